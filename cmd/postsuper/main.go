// Command postsuper is postdove's postsuper(1): queue maintenance as the
// super-user.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"postdove/pkg/maillog"
	"postdove/pkg/postqueue"
	"postdove/pkg/postsuper"
)

const usage = "usage: postsuper [-c config_dir] [-d queue_id (delete)] [-e queue_id (expire)] [-f queue_id (expire and/or un-hold)] [-h queue_id (hold)] [-H queue_id (un-hold)] [-p (purge temporary files)] [-r queue_id (requeue)] [-s (structure fix)] [-S (redundant structure fix)][-v (verbose)] [queue...]"

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "postsuper: fatal: "+msg)
	os.Exit(1)
}

// opFlag collects each -X ID of one operation, in order.
type opFlag struct {
	req *postsuper.Request
	op  postsuper.Op
}

func (f opFlag) String() string      { return "" }
func (f opFlag) Type() string        { return "queue_id" }
func (f opFlag) Set(id string) error { f.req.Add(f.op, id); return nil }

func main() {
	req := &postsuper.Request{Stdin: os.Stdin}
	fs := pflag.NewFlagSet("postsuper", pflag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(discard{})
	configDir := fs.StringP("config", "c", "", "configuration directory")
	for _, f := range []struct {
		name  string
		short string
		op    postsuper.Op
	}{{"delete", "d", postsuper.Delete}, {"expire", "e", postsuper.Expire}, {"expire-release", "f", postsuper.ExpireRelease},
		{"hold", "h", postsuper.Hold}, {"release", "H", postsuper.Release}, {"requeue", "r", postsuper.Requeue}} {
		fs.VarP(opFlag{req, f.op}, f.name, f.short, "")
	}
	fs.BoolVarP(&req.Purge, "purge", "p", false, "")
	fs.BoolVarP(&req.Check, "structure", "s", false, "")
	redundant := fs.BoolP("redundant", "S", false, "")
	fs.CountP("verbose", "v", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if msg := postqueue.GetoptMessage("postsuper", err); msg != "" {
			fmt.Fprintln(os.Stderr, msg)
		}
		fatal(usage)
	}
	req.Check = req.Check || *redundant
	req.Queues = fs.Args()
	if os.Geteuid() != 0 {
		fatal("use of this command is reserved for the superuser")
	}
	q, cfg, err := postqueue.Load(*configDir)
	if err != nil {
		fatal(err.Error())
	}
	// Like Postfix's postsuper, report to stderr and to the maillog.
	log := maillog.ForCommand(cfg.Get, "postsuper", os.Stderr)
	if err := postsuper.Run(q, req, log); err != nil {
		log.Fatal("%s", err.Error())
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
