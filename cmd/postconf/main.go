// Command postconf shows and edits Postfix configuration, as postconf(1).
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"postdove/pkg/postconf"
)

const usage = "usage: %s [-a (server SASL types)] [-A (client SASL types)] [-b (bounce templates)] [-c config_dir] [-c param_class] [-d (parameter defaults)] [-e (edit configuration)] [-f (fold lines)] [-F (master.cf fields)] [-h (no names)] [-H (no values)] [-l (lock types)] [-m (map types)] [-M (master.cf)] [-n (non-default parameters)] [-o name=value (override parameter value)] [-p (main.cf, default)] [-P (master.cf parameters)] [-t (bounce templates)] [-T compile-version|run-version|public-key-algorithms] [-v (verbose)] [-x (expand parameter values)] [-X (exclude)] [-# (comment-out)] [name...]"

func main() {
	prog := os.Args[0]
	fs := pflag.NewFlagSet(filepath.Base(prog), pflag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(discard{})
	var o postconf.Options
	var class, tmode string
	var ignored bool
	fs.StringVarP(&o.ConfigDir, "config-dir", "c", "", "")
	fs.StringVarP(&class, "class", "C", "", "")
	fs.StringVarP(&tmode, "tls", "T", "", "")
	fs.StringArrayVarP(&o.Overrides, "override", "o", nil, "")
	fs.BoolVarP(&o.Defaults, "defaults", "d", false, "")
	fs.BoolVarP(&o.NonDefault, "non-default", "n", false, "")
	fs.BoolVarP(&o.NoNames, "no-names", "h", false, "")
	fs.BoolVarP(&o.NoValues, "no-values", "H", false, "")
	fs.BoolVarP(&o.Expand, "expand", "x", false, "")
	fs.BoolVarP(&o.Fold, "fold", "f", false, "")
	fs.BoolVarP(&o.Edit, "edit", "e", false, "")
	fs.BoolVarP(&o.Comment, "comment", "#", false, "")
	fs.BoolVarP(&o.Exclude, "exclude", "X", false, "")
	fs.BoolVarP(&o.Master, "master", "M", false, "")
	fs.BoolVarP(&o.Fields, "fields", "F", false, "")
	fs.BoolVarP(&o.MasterParam, "master-params", "P", false, "")
	fs.BoolVarP(&o.MapTypes, "map-types", "m", false, "")
	fs.BoolVarP(&o.LockTypes, "lock-types", "l", false, "")
	// -p (main.cf, the default) and -v (verbose) change nothing here.
	for _, f := range []string{"p", "v"} {
		fs.BoolVarP(&ignored, "opt-"+f, f, false, "")
	}
	// SASL plug-in types and bounce templates belong to daemons postdove
	// does not provide through postconf: refuse rather than list main.cf.
	unsupported := map[string]*bool{}
	for _, f := range []string{"a", "A", "b", "t"} {
		unsupported[f] = fs.BoolP("opt-"+f, f, false, "")
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s\n", prog, getoptMessage(err))
		fmt.Fprintf(os.Stderr, "%s: fatal: "+usage+"\n", prog, prog)
		os.Exit(1)
	}
	for _, f := range []string{"a", "A", "b", "t"} {
		if *unsupported[f] {
			fmt.Fprintf(os.Stderr, "%s: fatal: -%s is not supported by postdove\n", prog, f)
			os.Exit(1)
		}
	}
	if fs.Changed("tls") {
		fmt.Fprintf(os.Stderr, "%s: fatal: -T is not supported by postdove\n", prog)
		os.Exit(1)
	}
	o.Args = fs.Args()
	o.FromFlag = o.ConfigDir != "" || os.Getenv("MAIL_CONFIG") != ""
	warn := func(msg string) { fmt.Fprintf(os.Stderr, "%s: warning: %s\n", prog, msg) }
	err := postconf.Run(o, os.Stdout, warn)
	if err == nil {
		return
	}
	var f *postconf.Fatal
	if errors.As(err, &f) {
		for _, b := range f.Before {
			warn(b)
		}
	}
	fmt.Fprintf(os.Stderr, "%s: fatal: %s\n", prog, err)
	os.Exit(1)
}

// getoptMessage rewrites pflag's complaint in getopt(3)'s words.
func getoptMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "shorthand flag: '"); i >= 0 && len(msg) > i+18 {
		return "invalid option -- '" + msg[i+17:i+18] + "'"
	}
	if i := strings.Index(msg, "needs an argument: '"); i >= 0 && len(msg) > i+21 {
		return "option requires an argument -- '" + msg[i+20:i+21] + "'"
	}
	if strings.HasPrefix(msg, "unknown flag: --") {
		return "unrecognized option '" + strings.TrimPrefix(msg, "unknown flag: ") + "'"
	}
	return msg
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
