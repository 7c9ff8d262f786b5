package mbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"postdove/pkg/syserr"
	"strings"
	"syscall"
	"time"

	"postdove/pkg/mbox/lineconv"
)

// Options control one delivery.
type Options struct {
	// Locks are the locking methods; nil means DefaultLocks
	// ("fcntl, dotlock"). Pass &Locks{} for none.
	Locks *Locks
	// LockTimeouts bound the wait for the locks.
	LockTimeouts LockTimeouts
	// Create allows creating a missing mailbox, owned by UID:GID (when
	// the process may chown) with Mode (0600 when zero).
	Create   bool
	UID, GID int
	Mode     os.FileMode
	// Headers are whole header lines (no line end) put after the From
	// line, such as "Delivered-To: alice@example.com" or
	// "Return-Path: <bob@example.org>". The caller decides which.
	Headers []string
	// SizeLimit is mailbox_size_limit: the mailbox may not grow beyond it
	// (0: no limit).
	SizeLimit int64
}

// Error is a failed delivery. The mailbox is left as it was.
type Error struct {
	Path   string
	Reason string // e.g. "file is a symbolic link", "error writing message: File too large"
	DSN    string // enhanced status: 4.x.x means try again later, 5.x.x bounce
	Err    error  // the underlying cause, when there is one
}

func (e *Error) Error() string { return "cannot update mailbox " + e.Path + ". " + e.Reason }
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the delivery should be retried later.
func (e *Error) Temporary() bool { return strings.HasPrefix(e.DSN, "4") }

// DSNFor maps a system error to an enhanced status code, as local(8) does
// for mailbox and maildir errors: lock contention and full disks are
// temporary, an oversized mailbox is 5.2.2, anything else def.
func DSNFor(err error, def string) string {
	switch {
	case errors.Is(err, ErrLocked), errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.ESTALE):
		return "4.2.0"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "4.3.0"
	case errors.Is(err, syscall.EFBIG):
		return "5.2.2"
	}
	return def
}

func fail(path, reason string, err error, def string) *Error {
	if err != nil {
		reason += ": " + syserr.Text(err)
	}
	return &Error{Path: path, Reason: reason, DSN: DSNFor(err, def), Err: err}
}

// FromLine is the mbox separator for a message from sender that arrived
// at arrival: "From sender  Sun Nov  1 22:21:01 2026" (two spaces, then
// ctime(3) in local time). The null sender is written as MAILER-DAEMON.
func FromLine(sender string, arrival time.Time) string {
	if sender == "" {
		sender = "MAILER-DAEMON"
	} else {
		sender = quoteLocal(sender)
	}
	return "From " + sender + "  " + arrival.Local().Format("Mon Jan _2 15:04:05 2006")
}

// quoteLocal quotes the local part of addr when it is not a dot-atom, as
// RFC 5322 requires, so the separator line stays one word.
func quoteLocal(addr string) string {
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i:]
	}
	if isDotAtom(local) && !strings.ContainsAny(domain, " \t\r\n") {
		return addr
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(local) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	for _, c := range []byte(domain) {
		if c <= 0x20 || c == 0x7f {
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, c := range []byte(s) {
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("()<>[]:;@\\,\"", c) >= 0 {
			return false
		}
	}
	return true
}

// Deliver appends the message read from msg to the mbox at path, with a
// From line for sender and arrival. It returns nil only after the mailbox
// has been fsynced; any error is an *Error and leaves the mailbox at its
// original size.
func Deliver(path string, sender string, arrival time.Time, msg io.Reader, opts Options) error {
	locks := DefaultLocks
	if opts.Locks != nil {
		locks = *opts.Locks
	}
	if err := checkParent(path, opts); err != nil {
		return err
	}
	if locks.Dotlock {
		unlock, err := DotLock(path, opts.LockTimeouts)
		if err != nil {
			return fail(path, "unable to create lock file "+path+".lock", errors.Unwrap(err), "5.2.0")
		}
		defer unlock()
	}
	f, err := openMailbox(path, opts)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockFile(f, locks, opts.LockTimeouts); err != nil {
		return fail(path, "unable to lock for exclusive access", errors.Unwrap(err), "5.2.0")
	}
	defer unlockFile(f, locks)

	fi, err := f.Stat()
	if err != nil {
		return fail(path, "cannot stat file", err, "4.2.0")
	}
	orig := fi.Size()
	if err := appendMessage(f, orig, sender, arrival, msg, opts); err != nil {
		f.Truncate(orig)
		f.Sync()
		return err
	}
	return nil
}

// appendMessage writes the separator, headers, body and blank line, and
// fsyncs the file.
func appendMessage(f *os.File, orig int64, sender string, arrival time.Time, msg io.Reader, opts Options) error {
	path := f.Name()
	lw := &limitWriter{w: f, left: -1}
	if opts.SizeLimit > 0 {
		lw.left = opts.SizeLimit - orig
	}
	bw := bufio.NewWriterSize(lw, 64*1024)
	head := FromLine(sender, arrival) + "\n"
	for _, h := range opts.Headers {
		head += h + "\n"
	}
	bw.WriteString(head)
	rd := &errReader{r: msg}
	_, err := lineconv.Copy(bw, rd, lineconv.Options{QuoteFrom: true, EnsureNewline: true})
	if err == nil {
		bw.WriteString("\n")
		err = bw.Flush()
	}
	if rd.err != nil {
		return fail(path, "error reading message", rd.err, "4.3.0")
	}
	if err != nil {
		return fail(path, "error writing message", err, "5.2.0")
	}
	if err := f.Sync(); err != nil {
		return fail(path, "error writing message", err, "5.2.0")
	}
	return nil
}

// errReader remembers a read error so it is not mistaken for a write error.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// limitWriter fails with EFBIG once left bytes have been written, as the
// file size resource limit makes write(2) fail in Postfix's local(8).
type limitWriter struct {
	w    io.Writer
	left int64 // -1: no limit
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left >= 0 && int64(len(p)) > l.left {
		return 0, syscall.EFBIG
	}
	n, err := l.w.Write(p)
	if l.left >= 0 {
		l.left -= int64(n)
	}
	return n, err
}

// checkParent refuses a mailbox whose directory is a symbolic link owned
// by someone other than root or the recipient: such a link could redirect
// a root delivery anywhere.
func checkParent(path string, opts Options) error {
	dir := filepath.Dir(path)
	fi, err := os.Lstat(dir)
	if err != nil {
		return fail(path, "cannot access mailbox directory", err, "5.2.0")
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && (st.Uid == 0 || (opts.Create && int(st.Uid) == opts.UID)) {
		return nil
	}
	return fail(path, "mailbox directory "+dir+" is a symbolic link not owned by root", nil, "5.2.0")
}

// openMailbox opens path for appending without following a symbolic link,
// creating it when allowed, and checks that it is a regular file with one
// link and that it was not replaced between the checks.
func openMailbox(path string, opts Options) (*os.File, error) {
	const flags = syscall.O_WRONLY | syscall.O_APPEND | syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	for try := 0; try < 3; try++ {
		var lst syscall.Stat_t
		err := syscall.Lstat(path, &lst)
		if err == syscall.ENOENT {
			if !opts.Create {
				return nil, fail(path, "cannot open file", err, "5.2.0")
			}
			mode := opts.Mode.Perm()
			if mode == 0 {
				mode = 0600
			}
			fd, err := syscall.Open(path, flags|syscall.O_CREAT|syscall.O_EXCL, uint32(mode))
			if err == syscall.EEXIST {
				continue // created under our feet: open it as existing
			}
			if err != nil {
				return nil, fail(path, "cannot create file exclusively", err, "5.2.0")
			}
			if err := chown(fd, opts); err != nil {
				syscall.Close(fd)
				os.Remove(path)
				return nil, fail(path, "cannot change file ownership", err, "5.2.0")
			}
			return os.NewFile(uintptr(fd), path), nil
		}
		if err != nil {
			return nil, fail(path, "cannot open file", err, "5.2.0")
		}
		if lst.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			return nil, fail(path, "file is a symbolic link", nil, "5.2.0")
		}
		if lst.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return nil, fail(path, "file is not a regular file", nil, "5.2.0")
		}
		fd, err := syscall.Open(path, flags, 0)
		if err == syscall.ENOENT {
			continue
		}
		if err == syscall.ELOOP {
			return nil, fail(path, "file is a symbolic link", nil, "5.2.0")
		}
		if err != nil {
			return nil, fail(path, "cannot open file", err, "5.2.0")
		}
		var st syscall.Stat_t
		reason := ""
		switch err := syscall.Fstat(fd, &st); {
		case err != nil:
			reason = "cannot fstat file: " + syserr.Text(err)
		case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
			reason = "file is not a regular file"
		case st.Dev != lst.Dev || st.Ino != lst.Ino:
			reason = "file has been replaced"
		case st.Nlink != 1:
			reason = fmt.Sprintf("file has %d hard links", st.Nlink)
		}
		if reason != "" {
			syscall.Close(fd)
			return nil, fail(path, reason, nil, "5.2.0")
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	return nil, fail(path, "file keeps being created and removed", syscall.EAGAIN, "4.2.0")
}

// chown gives a new file (or directory) to opts.UID:opts.GID when that is
// not who created it.
func chown(fd int, opts Options) error {
	if !opts.Create || (opts.UID < 0 && opts.GID < 0) {
		return nil
	}
	if opts.UID == os.Geteuid() && opts.GID == os.Getegid() {
		return nil
	}
	return syscall.Fchown(fd, opts.UID, opts.GID)
}
