package sendmail

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Mode is what sendmail was asked to do.
type Mode string

// Modes.
const (
	ModeDeliver    Mode = "m" // -bm
	ModeSMTP       Mode = "s" // -bs
	ModePrintQueue Mode = "p" // -bp, mailq
	ModeNewAliases Mode = "i" // -bi, newaliases
	ModeFlush      Mode = "q" // -q
	ModeVerify     Mode = "v" // -bv
	ModeFlushSite  Mode = "R" // -qRsite: postqueue -s site
	ModeFlushID    Mode = "I" // -qIqueue_id: postqueue -i queue_id
	ModeDaemon     Mode = "d" // -bd, -bl: postfix start
	ModeIgnore     Mode = "-" // -bh, -bH, -qinterval: nothing to do, exit 0
)

// Options is the parsed command line.
type Options struct {
	Mode        Mode
	Config      string // -C
	Sender      string // -f / -r
	SenderSet   bool
	FullName    string // -F
	Extract     bool   // -t
	IgnoreDots  bool   // -i, -oi
	Verbose     int    // -v
	DSNNotify   string // -N
	FlushSite   string // -qRsite (the last one)
	FlushID     string // -qIqueue_id (the last one)
	Recipients  []string
	Warnings    []string // non-fatal option warnings, without prefix
	programName string
	flushBare   bool // a bare -q was given
	interval    bool // -qinterval was given
}

// UsageError is a command-line error; Msg is what sendmail prints before
// "fatal: usage: ...", Warnings what it warned about before the error.
type UsageError struct {
	Msg, Fatal string
	Warnings   []string
}

func (e *UsageError) Error() string { return e.Fatal }

// argOpts take an argument (getopt "x:"); flagOpts do not.
const (
	argOpts  = "BCFNORVXbefhopqrL"
	flagOpts = "GIUcimntvx"
)

// Parse parses sendmail's command line (argv[0] included: "mailq" and
// "newaliases" select their modes), getopt style: clustered flags, option
// arguments attached or separate, "--" ends options.
func Parse(argv []string) (*Options, error) {
	o := &Options{Mode: ModeDeliver}
	if len(argv) > 0 {
		o.programName = filepath.Base(argv[0])
		switch o.programName {
		case "mailq":
			o.Mode = ModePrintQueue
		case "newaliases":
			o.Mode = ModeNewAliases
		}
	}
	args := argv
	if len(args) > 0 {
		args = args[1:]
	}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case strings.IndexByte(argOpts, c) >= 0:
				val := a[j+1:]
				if val == "" {
					if c == 'q' {
						// -q alone: flush; its argument, if any, is attached.
						val = ""
					} else {
						if i+1 >= len(args) {
							return nil, &UsageError{Msg: fmt.Sprintf("option requires an argument -- '%c'", c), Fatal: "usage: sendmail [options]"}
						}
						i++
						val = args[i]
					}
				}
				if err := o.setArg(c, val); err != nil {
					return nil, err
				}
				j = len(a)
			case strings.IndexByte(flagOpts, c) >= 0:
				switch c {
				case 'i':
					o.IgnoreDots = true
				case 't':
					o.Extract = true
				case 'v':
					o.Verbose++
				case 'I':
					o.Mode = ModeNewAliases
				}
			default:
				return nil, &UsageError{Msg: fmt.Sprintf("invalid option -- '%c'", c), Fatal: "usage: sendmail [options]"}
			}
		}
	}
	o.Recipients = append(o.Recipients, args[i:]...)
	if err := o.settle(); err != nil {
		return nil, err
	}
	return o, nil
}

// noRecipient names the modes that take no recipient, as Postfix's
// sendmail words them.
var noRecipient = map[Mode]string{
	ModeNewAliases: "alias initialization mode",
	ModeDaemon:     "daemon mode",
	ModeFlush:      "flush queue mode",
	ModeFlushSite:  "flush site",
	ModeFlushID:    "flush queue_id",
	ModePrintQueue: "display queue mode",
	ModeSMTP:       "stand-alone mode",
}

// settle applies Postfix's rules once every option is read: -qR and -qI
// only in delivery mode (and -qR wins over -qI), a bare -q is ignored with
// a warning in daemon mode, -qinterval makes anything but daemon mode do
// nothing, and the modes of noRecipient refuse recipients.
func (o *Options) settle() error {
	if o.FlushSite != "" || o.FlushID != "" {
		flag := "-qR"
		if o.FlushSite == "" {
			flag = "-qI"
		}
		if o.Mode != ModeDeliver {
			return &UsageError{Fatal: flag + " can be used only in delivery mode"}
		}
		o.Mode = ModeFlushSite
		if o.FlushSite == "" {
			o.Mode = ModeFlushID
		}
	}
	if o.Mode == ModeDaemon {
		if o.flushBare {
			o.Warnings = append(o.Warnings, "ignoring -q option in daemon mode")
		}
	} else if o.interval {
		o.Mode = ModeIgnore
		return nil
	}
	if what, ok := noRecipient[o.Mode]; ok && len(o.Recipients) > 0 {
		return &UsageError{Fatal: what + " requires no recipient", Warnings: o.Warnings}
	}
	return nil
}

func (o *Options) setArg(c byte, val string) error {
	switch c {
	case 'C':
		o.Config = val
	case 'F':
		o.FullName = val
	case 'f', 'r':
		o.Sender = strings.TrimSuffix(strings.TrimPrefix(val, "<"), ">")
		o.SenderSet = true
	case 'N':
		o.DSNNotify = val
		if !validNotify(val) {
			o.Warnings = append(o.Warnings,
				fmt.Sprintf("unknown DSN NOTIFY command value \"%s\" in \"%s\"", firstBadNotify(val), val),
				"bad -N option value -- ignored")
			o.DSNNotify = ""
		}
	case 'o':
		// -oi is -i; every other -o option is accepted and ignored.
		if val == "i" {
			o.IgnoreDots = true
		}
	case 'b':
		switch val {
		case "m":
			o.Mode = ModeDeliver
		case "d", "l":
			o.Mode = ModeDaemon
		case "h", "H":
			o.Mode = ModeIgnore
		case "s":
			o.Mode = ModeSMTP
		case "p":
			o.Mode = ModePrintQueue
		case "i":
			o.Mode = ModeNewAliases
		case "v":
			o.Mode = ModeVerify
		default:
			return &UsageError{Fatal: "unsupported: -b" + val}
		}
	case 'q':
		switch {
		case val == "":
			// Daemon mode keeps running and ignores it (see settle).
			if o.Mode != ModeDaemon {
				o.Mode = ModeFlush
			}
			o.flushBare = true
		case val[0] == 'R':
			if o.FlushSite = val[1:]; o.FlushSite == "" {
				return &UsageError{Fatal: "specify: -qRsitename"}
			}
		case val[0] == 'I':
			if o.FlushID = val[1:]; o.FlushID == "" {
				return &UsageError{Fatal: "specify: -qIqueueid"}
			}
		case val[0] >= '0' && val[0] <= '9':
			o.interval = true
		default:
			return &UsageError{Fatal: fmt.Sprintf("-q%c is not implemented", val[0])}
		}
	}
	return nil
}

var notifyWords = map[string]bool{"never": true, "success": true, "failure": true, "delay": true}

func firstBadNotify(v string) string {
	for _, w := range strings.Split(v, ",") {
		if !notifyWords[strings.ToLower(strings.TrimSpace(w))] {
			return w
		}
	}
	return v
}

func validNotify(v string) bool {
	words := strings.Split(v, ",")
	for _, w := range words {
		w = strings.ToLower(strings.TrimSpace(w))
		if !notifyWords[w] || (w == "never" && len(words) > 1) {
			return false
		}
	}
	return true
}
