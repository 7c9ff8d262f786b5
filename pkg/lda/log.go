package lda

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"postdove/pkg/maillog"
	"postdove/pkg/syserr"
)

// logger writes Dovecot's log lines: to syslog as "dovecot: lda(alice)<pid>
// <session>: msgid=...: saved mail to INBOX" (no "Info: " there, other
// levels named), or to log_path and info_log_path as "Nov 27 05:52:34
// lda(alice)<pid><session>: Info: ...", the time in log_timestamp.
type logger struct {
	prefix    string // "lda(alice)<pid><session>: "
	errFile   io.Writer
	infoFile  io.Writer
	sys       *maillog.Logger
	timestamp string
	now       func() time.Time
	closers   []io.Closer
	// emit, when set, takes every line (level and text) instead.
	emit func(level, text string)
}

// newLogger opens the destinations that get (a function returning a
// setting) names. A log file that cannot be opened is an error, worded as
// Dovecot's; an unreachable syslog drops the lines.
func newLogger(get func(string) string, prefix string) (*logger, error) {
	l := &logger{prefix: prefix, timestamp: strings.Trim(get("log_timestamp"), `"`), now: time.Now}
	var openErr error
	open := func(path string) io.Writer {
		if path == "" || path == "syslog" {
			if l.sys == nil {
				sys, err := maillog.New(maillog.Options{SyslogName: get("instance_name"), Facility: get("syslog_facility"),
					NoPID: true, NoLevelPrefix: true, UTF8: true, FallbackFile: os.DevNull})
				if err == nil {
					l.sys = sys
					l.closers = append(l.closers, sys)
				}
			}
			return nil
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			if openErr == nil {
				openErr = fmt.Errorf("Can't open log file %s: %s", path, syserr.Text(err))
			}
			return io.Discard
		}
		l.closers = append(l.closers, f)
		return f
	}
	l.errFile = open(get("log_path"))
	l.infoFile = l.errFile
	if p := get("info_log_path"); p != "" {
		l.infoFile = open(p)
	}
	if openErr != nil {
		l.Close()
		return nil, openErr
	}
	return l, nil
}

func (l *logger) Info(format string, args ...any) { l.log("Info", format, args...) }

// Fatal logs a failure that ends the program before a user session
// exists: the prefix names the process, "lda(1234): ".
func (l *logger) Fatal(format string, args ...any) {
	prefix := l.prefix
	l.prefix = "lda(" + strconv.Itoa(os.Getpid()) + "): "
	l.log("Fatal", format, args...)
	l.prefix = prefix
}
func (l *logger) Error(format string, args ...any) { l.log("Error", format, args...) }

// Logger is Dovecot's log writer for the other Dovecot-side programs
// (the dovecot master and its login and mail processes), whose lines carry
// a prefix of their own each ("imap-login: ", "imap(alice)<pid><session>: ").
type Logger = logger

// NewLogger opens the log destinations get's settings name (log_path,
// info_log_path, syslog_facility, log_timestamp), as dovecot-lda does.
func NewLogger(get func(string) string) (*Logger, error) { return newLogger(get, "") }

// Logf writes one line with prefix at level ("Info", "Warning", "Error",
// "Fatal").
func (l *logger) Logf(prefix, level, format string, args ...any) {
	l.write(prefix, level, fmt.Sprintf(format, args...))
}

func (l *logger) log(level, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if l.emit != nil {
		l.emit(level, text)
		return
	}
	l.write(l.prefix, level, text)
}

func (l *logger) write(prefix, level, text string) {
	w := l.errFile
	if level == "Info" {
		w = l.infoFile
	}
	if w == nil {
		if l.sys == nil {
			return
		}
		sev := maillog.LevelInfo
		if level != "Info" {
			text = level + ": " + text
			sev = maillog.LevelError
			if level == "Warning" {
				sev = maillog.LevelWarning
			}
		}
		l.sys.WriteRecord(sev, prefix+text)
		return
	}
	io.WriteString(w, strftime(l.timestamp, l.now())+prefix+level+": "+text+"\n")
}

func (l *logger) Close() {
	for _, c := range l.closers {
		c.Close()
	}
}

// strftime formats t as strftime(3) does for the directives a
// log_timestamp uses.
func strftime(format string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'b', 'h':
			b.WriteString(t.Format("Jan"))
		case 'a':
			b.WriteString(t.Format("Mon"))
		case 'd':
			b.WriteString(t.Format("02"))
		case 'e':
			b.WriteString(t.Format("_2"))
		case 'm':
			b.WriteString(t.Format("01"))
		case 'y':
			b.WriteString(t.Format("06"))
		case 'Y':
			b.WriteString(t.Format("2006"))
		case 'H':
			b.WriteString(t.Format("15"))
		case 'M':
			b.WriteString(t.Format("04"))
		case 'S':
			b.WriteString(t.Format("05"))
		case 'z':
			b.WriteString(t.Format("-0700"))
		case 'Z':
			b.WriteString(t.Format("MST"))
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
