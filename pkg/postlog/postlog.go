// Package postlog is postdove's postlog(1): it writes its arguments, or
// each line of standard input, to the maillog as one record, with the
// tag and severity asked for, as Postfix's postlog does. On a terminal it
// also shows each record on standard error.
//
// API: Main(args []string, stdin io.Reader, stderr io.Writer) int.
package postlog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/spf13/pflag"

	"postdove/pkg/maillog"
	"postdove/pkg/postconf"
	"postdove/pkg/postqueue"
)

// Usage is postlog's usage line, as Postfix's prints it.
const Usage = "usage: postlog [-c config_dir] [-i] [-p priority] [-t tag] [-v] [text]"

// Severities by -p name, as Postfix's postlog takes them.
var severities = map[string]maillog.Level{
	"info":    maillog.LevelInfo,
	"warning": maillog.LevelWarning,
	"error":   maillog.LevelError,
	"fatal":   maillog.LevelFatal,
	"panic":   maillog.LevelPanic,
}

// maxLine bounds one record read from standard input.
const maxLine = 1 << 20

// Main runs postlog with args (without the program name) and returns its
// exit status.
func Main(args []string, stdin io.Reader, stderr io.Writer) int {
	tty := isTerminal(stderr)
	fs := pflag.NewFlagSet("postlog", pflag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	configDir := fs.StringP("config", "c", "", "")
	fs.BoolP("pid", "i", false, "") // the process ID is always logged
	priority := fs.StringP("priority", "p", "info", "")
	tag := fs.StringP("tag", "t", "", "")
	fs.CountP("verbose", "v", "")
	fs.SetInterspersed(false)
	// Errors go to stderr whether or not it is a terminal (Postfix's go
	// to the terminal only): a script's log then says what went wrong.
	fatal := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "postlog: fatal: "+format+"\n", a...)
		return 1
	}
	if err := fs.Parse(args); err != nil {
		if msg := postqueue.GetoptMessage("postlog", err); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return fatal("%s", Usage)
	}
	cfg, err := postconf.Load(postconf.ConfigDir(*configDir))
	if err != nil {
		return fatal("%v", err)
	}
	level, ok := severities[strings.ToLower(*priority)]
	if !ok {
		return fatal("bad severity: %q", *priority)
	}
	opts := maillog.FromConfig(cfg.Get, "postlog")
	if fs.Changed("tag") {
		opts.SyslogName, opts.Program = *tag, ""
	}
	log, err := maillog.New(opts)
	if err != nil {
		return fatal("%v", err)
	}
	defer log.Close()
	write := func(text string) {
		if tty {
			name := log.Tag()
			fmt.Fprintf(stderr, "%s: %s\n", name, levelPrefix(level)+text)
		}
		_ = log.WriteRecord(level, text)
	}
	if fs.NArg() > 0 {
		write(strings.Join(fs.Args(), " "))
		return 0
	}
	br := bufio.NewReaderSize(stdin, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimSuffix(line, "\n")
			if len(line) > maxLine {
				line = line[:maxLine]
			}
			write(line)
		}
		if err != nil {
			return 0
		}
	}
}

func levelPrefix(l maillog.Level) string {
	for name, v := range severities {
		if v == l && l != maillog.LevelInfo {
			return name + ": "
		}
	}
	return ""
}

// isTerminal tells whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
