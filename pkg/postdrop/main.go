package postdrop

import (
	"errors"
	"io"
	"os"

	"github.com/spf13/pflag"

	"postdove/pkg/maillog"
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
	// sendmail -bv run by an ordinary user.
	verify := fs.Bool("verify", false, "report on delivery instead of delivering")
	fs.MarkHidden("verify")
	fs.CountP("verbose", "v", "verbose")
	uid := os.Getuid()
	// Like Postfix's, postdrop reports on stderr and to the maillog.
	log := maillog.ForCommand(nil, "postdrop", stderr)
	if err := fs.Parse(args); err != nil {
		log.Log(maillog.LevelFatal, "usage: postdrop [-c config_dir] [-v]")
		return ExitTempFail
	}
	dir := postconf.ConfigDir(*confDir)
	if err := postconf.CheckTrusted(dir); err != nil {
		log.Log(maillog.LevelFatal, "%v", err)
		return ExitTempFail
	}
	cfg, err := postconf.Load(dir)
	if err != nil {
		log.Log(maillog.LevelFatal, "%v", err)
		return ExitTempFail
	}
	log = maillog.ForCommand(cfg.Get, "postdrop", stderr)
	q := queue.FromConfig(cfg)
	env := &Envelope{Sender: *sender, FullName: *fullName, Recipients: fs.Args(), Extracted: *extracted, UID: uid, Verify: *verify}
	if _, err := Drop(q, env, stdin, cfg.Size("message_size_limit")); err != nil {
		if errors.Is(err, ErrTooBig) {
			log.Warning("uid=%d: File too large", uid)
			return ExitTooBig
		}
		log.Warning("uid=%d: %v", uid, err)
		return ExitTempFail
	}
	return 0
}
