// Command postqueue is postdove's postqueue(1): list (-p, -j) or flush
// (-f, -i, -s) the mail queue, through the showq and flush services.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"postdove/pkg/postqueue"
)

const usage = "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site"

// exUnavailable is EX_UNAVAILABLE, postqueue's exit status on errors.
const exUnavailable = 69

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "postqueue: fatal: "+msg)
	os.Exit(exUnavailable)
}

func warn(msg string) { fmt.Fprintln(os.Stderr, "postqueue: warning: "+msg) }

func main() {
	fs := pflag.NewFlagSet("postqueue", pflag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(discard{})
	configDir := fs.StringP("config", "c", "", "configuration directory")
	flush := fs.BoolP("flush", "f", false, "flush the queue")
	id := fs.StringP("id", "i", "", "flush one message")
	jsonOut := fs.BoolP("json", "j", false, "JSON listing")
	list := fs.BoolP("print", "p", false, "listing")
	site := fs.StringP("site", "s", "", "flush one destination")
	fs.CountP("verbose", "v", "verbose")
	fs.SortFlags = false
	if err := fs.Parse(os.Args[1:]); err != nil {
		if msg := postqueue.GetoptMessage("postqueue", err); msg != "" {
			fmt.Fprintln(os.Stderr, msg)
		}
		fatal(usage)
	}
	modes := 0
	for _, on := range []bool{*flush, fs.Changed("id"), *jsonOut, *list, fs.Changed("site")} {
		if on {
			modes++
		}
	}
	if modes != 1 || fs.NArg() > 0 {
		fatal(usage)
	}
	q, cfg, err := postqueue.Load(*configDir)
	if err != nil {
		fatal(err.Error())
	}
	action := postqueue.ActionFlush
	if *list || *jsonOut {
		action = postqueue.ActionView
	}
	if err := postqueue.Authorize(cfg, action); err != nil {
		fatal(err.Error())
	}
	lister := &postqueue.Lister{Q: q, MailName: cfg.Get("mail_name"), Warn: warn}
	switch {
	case *list:
		err = lister.List(os.Stdout, false)
	case *jsonOut:
		err = lister.List(os.Stdout, true)
	case *flush:
		err = postqueue.Flush(q)
	case fs.Changed("id"):
		err = postqueue.FlushID(q, *id)
	case fs.Changed("site"):
		err = postqueue.FlushSite(q, *site, postqueue.FlushDomains(cfg))
	}
	var f *postqueue.Fatal
	if errors.As(err, &f) && f.Warning != "" {
		warn(f.Warning)
	}
	if err != nil {
		fatal(err.Error())
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
