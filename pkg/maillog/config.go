package maillog

import (
	"io"
	"os"
	"strconv"
)

// EnvLogFD names the environment variable through which the master passes an
// already open log file to the daemons it starts: they run as mail_owner and
// could not open a root-owned maillog_file themselves (Postfix routes their
// records through postlogd for the same reason).
const EnvLogFD = "POSTDOVE_LOGFD"

// FromConfig returns the Options main.cf describes for program: syslog_name,
// syslog_facility, maillog_file and myhostname, read through get (postconf's
// Config.Get). A log file inherited from the master (EnvLogFD) is used
// instead of opening one.
func FromConfig(get func(name string) string, program string) Options {
	o := Options{
		SyslogName: get("syslog_name"),
		Program:    program,
		Facility:   get("syslog_facility"),
		File:       get("maillog_file"),
		Hostname:   get("myhostname"),
		UTF8:       get("smtputf8_enable") == "yes",
	}
	if o.SyslogName == "" {
		o.SyslogName = "postfix"
	}
	if fd, err := strconv.Atoi(os.Getenv(EnvLogFD)); err == nil && fd > 2 {
		o.Inherited = os.NewFile(uintptr(fd), "maillog")
	}
	return o
}

// Destination opens, as New would, the file records for opts go to, for the
// master to hand to its unprivileged children; nil when records go to
// syslog.
func Destination(opts Options) (*os.File, error) {
	l, err := New(opts)
	if err != nil {
		return nil, err
	}
	return l.out.file, nil
}

// ForCommand is the logger of a command a user runs (sendmail, postdrop,
// postsuper): like Postfix's, it reports both on stderr and to the maillog
// that main.cf describes (get is postconf's Config.Get; nil before main.cf
// could be read: the defaults). When the maillog cannot be opened — an
// ordinary user and a root-owned maillog_file, or no syslog socket and an
// unwritable fallback file — it reports on stderr alone and the command
// carries on, as Postfix's do when postlogd cannot be reached.
func ForCommand(get func(name string) string, program string, stderr io.Writer) *Logger {
	opts := Options{SyslogName: "postfix", Program: program}
	if get != nil {
		opts = FromConfig(get, program)
	}
	opts.Stderr = stderr
	l, err := New(opts)
	if err == nil {
		return l
	}
	opts.Inherited = nil
	if o, err := opts.withDefaults(); err == nil {
		opts = o
	} else { // an unknown syslog_facility: the records go nowhere anyway
		opts.Facility = ""
		opts, _ = opts.withDefaults()
	}
	return &Logger{tag: tagFor(opts.SyslogName, opts.Program), opts: opts, out: &sink{}}
}
