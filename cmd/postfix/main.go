// Command postfix is postdove's postfix(1): "postfix [-c config_dir] [-Dv]
// command", e.g. "postfix check".
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"postdove/pkg/local"
	"postdove/pkg/maillog"
	"postdove/pkg/master"
	"postdove/pkg/postconf"
	"postdove/pkg/postfix"
	"postdove/pkg/queue"
	"postdove/pkg/smtpd"
)

func main() {
	// The same binary is the master, its daemons and local's delivery
	// workers; those never return from here.
	local.MaybeRunWorker()
	master.RegisterServer("smtpd", func(ctx context.Context, cfg *postconf.Config, log *maillog.Logger, ln net.Listener) error {
		return smtpd.New(cfg, queue.FromConfig(cfg), log).Serve(ctx, ln)
	})
	master.MaybeRun()
	fs := pflag.NewFlagSet("postfix", pflag.ContinueOnError)
	fs.SetInterspersed(false) // options end at the command, as getopt "+c:Dv"
	fs.Usage = func() {}
	fs.SetOutput(discard{})
	env := &postfix.Env{Stdout: os.Stdout, Stderr: os.Stderr}
	fs.StringVarP(&env.ConfigDir, "config", "c", "", "configuration directory")
	fs.BoolVarP(&env.Debug, "debug", "D", false, "run daemons under the debugger")
	fs.CountVarP(&env.Verbose, "verbose", "v", "verbose logging")
	if err := fs.Parse(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "postfix: %s\n", getoptMessage(err))
		fmt.Fprintf(os.Stderr, "postfix: fatal: %s\n", postfix.Usage)
		os.Exit(1)
	}
	err := postfix.Run(env, fs.Args())
	var f *postfix.Fatal
	if errors.As(err, &f) {
		if f.Msg != "" {
			fmt.Fprintln(os.Stderr, f.Error())
		}
	} else if err != nil {
		fmt.Fprintf(os.Stderr, "postfix: fatal: %v\n", err)
	}
	os.Exit(postfix.ExitCode(err))
}

// getoptMessage words a pflag error as getopt(3) does.
func getoptMessage(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "unknown shorthand flag: '"):
		return "invalid option -- '" + msg[len("unknown shorthand flag: '"):][:1] + "'"
	case strings.HasPrefix(msg, "flag needs an argument: '"):
		return "option requires an argument -- '" + msg[len("flag needs an argument: '"):][:1] + "'"
	case strings.HasPrefix(msg, "unknown flag: --"):
		return "unrecognized option '" + strings.TrimPrefix(msg, "unknown flag: ") + "'"
	}
	return msg
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
