package postdrop

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"postdove/pkg/postconf"
	"postdove/pkg/queue"
)

// Main is the postdrop command: it parses args (without the program
// name), reads the message from stdin and returns the exit status.
func Main(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := pflag.NewFlagSet("postdrop", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	confDir := fs.StringP("config", "c", "", "configuration directory")
	sender := fs.StringP("sender", "f", "", "envelope sender")
	fullName := fs.StringP("fullname", "F", "", "sender full name")
	extracted := fs.BoolP("extracted", "t", false, "recipients were extracted from headers")
	fs.BoolP("record", "r", false, "accepted for compatibility")
	fs.CountP("verbose", "v", "verbose")
	uid := os.Getuid()
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "postdrop: fatal: usage: postdrop [-c config_dir] [-v]\n")
		return ExitTempFail
	}
	dir := postconf.ConfigDir(*confDir)
	if err := postconf.CheckTrusted(dir); err != nil {
		fmt.Fprintf(stderr, "postdrop: fatal: %v\n", err)
		return ExitTempFail
	}
	cfg, err := postconf.Load(dir)
	if err != nil {
		fmt.Fprintf(stderr, "postdrop: fatal: %v\n", err)
		return ExitTempFail
	}
	q := queue.New(cfg.Get("queue_directory"))
	env := &Envelope{Sender: *sender, FullName: *fullName, Recipients: fs.Args(), Extracted: *extracted, UID: uid}
	if _, err := Drop(q, env, stdin, cfg.Size("message_size_limit")); err != nil {
		if errors.Is(err, ErrTooBig) {
			fmt.Fprintf(stderr, "postdrop: warning: uid=%d: File too large\n", uid)
			return ExitTooBig
		}
		fmt.Fprintf(stderr, "postdrop: warning: uid=%d: %v\n", uid, err)
		return ExitTempFail
	}
	return 0
}
