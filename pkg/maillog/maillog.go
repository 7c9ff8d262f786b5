package maillog

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Defaults used when the matching Options field is empty.
const (
	DefaultSyslogSocket = "/dev/log"
	DefaultFile         = "/var/log/maillog"
	DefaultFacility     = "mail"
	// DefaultFileMode is the mode a new maillog_file gets, as Postfix 3.7's
	// postlog/postlogd create it (before the process umask).
	DefaultFileMode os.FileMode = 0644
	// MaxSyslogRecord bounds one syslog datagram; longer texts are cut.
	MaxSyslogRecord = 8192
)

// Options describe where a Logger writes and how it names itself.
type Options struct {
	SyslogName string // syslog_name: "postfix"
	Program    string // "qmgr"; the tag is SyslogName/Program, or SyslogName alone when empty
	Facility   string // syslog_facility: "mail" when empty
	File       string // maillog_file: when set, append to it instead of syslog
	Hostname   string // myhostname; its first label goes into file records
	PID        int    // 0: os.Getpid()
	NoPID      bool   // omit "[pid]" after the tag, as Dovecot does
	// NoLevelPrefix leaves out "error: " and the like: the level only
	// sets the syslog severity (Dovecot's text names its own levels).
	NoLevelPrefix bool

	// SyslogSocket is the syslog socket (DefaultSyslogSocket when empty).
	SyslogSocket string
	// Inherited is an already open log file (from the master, see
	// EnvLogFD); when set, records are appended to it and File, the syslog
	// socket and FallbackFile are not consulted.
	Inherited *os.File
	// FallbackFile is used when File is empty and the syslog socket does
	// not exist (DefaultFile when empty).
	FallbackFile string
	// FileMode is the mode of a newly created log file (DefaultFileMode
	// when zero).
	FileMode os.FileMode
	// UTF8 keeps valid UTF-8 in the text (smtputf8_enable); otherwise
	// every byte that is not printable ASCII becomes '?', as Postfix does.
	UTF8 bool
	// Stderr, when set, also receives "program: warning: text" lines,
	// as Postfix commands print to their terminal.
	Stderr io.Writer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Level is the severity of one record.
type Level int

// Severities, with the prefix each puts before the text.
const (
	LevelInfo    Level = iota // no prefix
	LevelWarning              // "warning: "
	LevelError                // "error: "
	LevelFatal                // "fatal: "
	LevelPanic                // "panic: "
)

var levelInfo = [...]struct {
	prefix   string
	severity int // syslog severity
}{
	LevelInfo:    {"", 6},
	LevelWarning: {"warning: ", 4},
	LevelError:   {"error: ", 3},
	LevelFatal:   {"fatal: ", 2},
	LevelPanic:   {"panic: ", 2},
}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Logger writes records for one program. Loggers made by With share their
// parent's destination. A Logger is safe for concurrent use.
type Logger struct {
	tag  string
	opts Options
	out  *sink
}

// sink is the shared destination: a syslog socket or an O_APPEND file.
type sink struct {
	mu       sync.Mutex
	file     *os.File
	sockPath string
	conn     net.Conn
	stream   bool // the syslog socket is SOCK_STREAM: records end in NUL
}

// exit ends the process after a fatal record; tests replace it.
var exit = os.Exit

// New opens the log destination described by opts.
func New(opts Options) (*Logger, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	out := &sink{file: opts.Inherited}
	file := opts.File
	if out.file != nil {
		file = ""
	} else if file == "" {
		if fi, err := os.Stat(opts.SyslogSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			out.sockPath = opts.SyslogSocket
			// A syslog daemon that is down now may come back; connect lazily.
			_ = out.dial()
		} else {
			file = opts.FallbackFile
		}
	}
	if file != "" {
		f, err := openLogFile(file, opts.FileMode)
		if err != nil {
			return nil, err
		}
		out.file = f
	}
	return &Logger{tag: tagFor(opts.SyslogName, opts.Program), opts: opts, out: out}, nil
}

// withDefaults fills in the empty fields of opts.
func (opts Options) withDefaults() (Options, error) {
	if opts.Facility == "" {
		opts.Facility = DefaultFacility
	}
	if _, ok := facilities[strings.ToLower(opts.Facility)]; !ok {
		return opts, fmt.Errorf("unknown syslog facility: %s", opts.Facility)
	}
	if opts.SyslogSocket == "" {
		opts.SyslogSocket = DefaultSyslogSocket
	}
	if opts.FallbackFile == "" {
		opts.FallbackFile = DefaultFile
	}
	if opts.FileMode == 0 {
		opts.FileMode = DefaultFileMode
	}
	if opts.PID == 0 {
		opts.PID = os.Getpid()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if i := strings.IndexByte(opts.Hostname, '.'); i > 0 {
		opts.Hostname = opts.Hostname[:i]
	}
	return opts, nil
}

// errNoDestination is what writing a record returns for a Logger that has
// no maillog (see ForCommand).
var errNoDestination = errors.New("no maillog destination")

func tagFor(name, program string) string {
	switch {
	case name == "":
		return program
	case program == "":
		return name
	}
	return name + "/" + program
}

// openLogFile opens path for appending, creating it with mode when missing.
// A symbolic link or a non-regular file is refused.
func openLogFile(path string, mode os.FileMode) (*os.File, error) {
	flags := os.O_WRONLY | os.O_APPEND | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	f, err := os.OpenFile(path, flags, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, os.ErrExist) { // another process won the race
			f, err = os.OpenFile(path, flags, 0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open logfile %s: %w", path, unwrapPath(err))
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open logfile %s: not a regular file", path)
	}
	return f, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// With returns a Logger for a sibling program ("postfix/smtp" next to
// "postfix/qmgr") that writes to the same destination.
func (l *Logger) With(program string) *Logger {
	opts := l.opts
	opts.Program = program
	return &Logger{tag: tagFor(opts.SyslogName, program), opts: opts, out: l.out}
}

// Tag is the program tag records carry, e.g. "postfix/qmgr".
func (l *Logger) Tag() string { return l.tag }

// Info logs an informational record.
func (l *Logger) Info(format string, args ...any) { l.Log(LevelInfo, format, args...) }

// Warning logs a record prefixed "warning: ".
func (l *Logger) Warning(format string, args ...any) { l.Log(LevelWarning, format, args...) }

// Error logs a record prefixed "error: ".
func (l *Logger) Error(format string, args ...any) { l.Log(LevelError, format, args...) }

// Fatal logs a record prefixed "fatal: " and exits with status 1, as
// Postfix's programs do.
func (l *Logger) Fatal(format string, args ...any) {
	l.Log(LevelFatal, format, args...)
	exit(1)
}

// Log writes one record at the given level. Errors writing the record are
// dropped, as syslog(3) drops them; WriteRecord reports them.
func (l *Logger) Log(level Level, format string, args ...any) {
	_ = l.WriteRecord(level, fmt.Sprintf(format, args...))
}

// WriteRecord writes text as one record and reports any error.
func (l *Logger) WriteRecord(level Level, text string) error {
	if level < LevelInfo || level > LevelPanic {
		level = LevelInfo
	}
	text = Sanitize(text, l.opts.UTF8)
	if !l.opts.NoLevelPrefix {
		text = levelInfo[level].prefix + text
	}
	if l.opts.Stderr != nil {
		name := l.opts.Program
		if name == "" {
			name = l.opts.SyslogName
		}
		fmt.Fprintf(l.opts.Stderr, "%s: %s\n", name, text)
	}
	now := l.opts.Now()
	ident := l.tag
	if !l.opts.NoPID {
		ident = fmt.Sprintf("%s[%d]", l.tag, l.opts.PID)
	}
	if l.out.file == nil && l.out.sockPath == "" {
		return errNoDestination
	}
	if l.out.file != nil {
		line := fmt.Sprintf("%s %s %s: %s\n", now.Format("Jan 02 15:04:05"), l.opts.Hostname, ident, text)
		_, err := l.out.file.Write([]byte(line)) // one write(2): O_APPEND keeps it whole
		return err
	}
	pri := facilities[strings.ToLower(l.opts.Facility)]*8 + levelInfo[level].severity
	rec := fmt.Sprintf("<%d>%s %s: %s", pri, now.Format("Jan _2 15:04:05"), ident, text)
	if len(rec) > MaxSyslogRecord {
		rec = rec[:MaxSyslogRecord]
	}
	return l.out.send(rec)
}

// Close releases the destination shared by this Logger and those made
// from it by With.
func (l *Logger) Close() error {
	l.out.mu.Lock()
	defer l.out.mu.Unlock()
	var err error
	if l.out.conn != nil {
		err = l.out.conn.Close()
		l.out.conn = nil
	}
	if l.out.file != nil {
		err = l.out.file.Close()
	}
	return err
}

// dial connects to the syslog socket: datagram first, then stream, as the
// C library does. The caller holds mu or owns the sink alone.
func (s *sink) dial() error {
	s.stream = false
	c, err := net.Dial("unixgram", s.sockPath)
	if err != nil && errors.Is(err, syscall.EPROTOTYPE) {
		c, err = net.Dial("unix", s.sockPath)
		s.stream = err == nil
	}
	if err != nil {
		return err
	}
	s.conn = c
	return nil
}

// send writes one syslog record, reconnecting once when the syslog daemon
// has gone away and come back.
func (s *sink) send(rec string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for try := 0; try < 2; try++ {
		if s.conn == nil {
			if err = s.dial(); err != nil {
				continue
			}
		}
		msg := []byte(rec)
		if s.stream {
			msg = append(msg, 0)
		}
		if _, err = s.conn.Write(msg); err == nil {
			return nil
		}
		s.conn.Close()
		s.conn = nil
	}
	return err
}

// Sanitize replaces what must not reach a log line: every byte that is not
// printable ASCII becomes '?'; with utf8, valid multi-byte UTF-8 is kept.
func Sanitize(s string, utf bool) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
			i++
			continue
		}
		if utf && c >= 0x80 {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError && r >= 0xa0 {
				b.WriteString(s[i : i+n])
				i += n
				continue
			}
		}
		b.WriteByte('?')
		i++
	}
	return b.String()
}
