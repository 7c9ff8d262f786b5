package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"postdove/pkg/syserr"
	"strconv"
	"strings"
	"syscall"

	"postdove/pkg/maildir"
	"postdove/pkg/mbox"
)

// reply codes
const (
	statusSent = iota
	statusDefer
	statusBounce
)

// maxForwardSize bounds what a worker returns for jobRead.
const maxForwardSize = 1 << 20

// runJob performs one delivery in the worker, with the worker's privileges.
func runJob(j job, body io.Reader) reply {
	switch j.Kind {
	case jobMbox, jobFile:
		return appendMbox(j, body)
	case jobMaildir:
		return deliverMaildir(j, body)
	case jobCommand:
		return runCommand(j, body)
	}
	return reply{Code: statusDefer, DSN: "4.3.0", Text: "unknown delivery request " + strconv.Quote(j.Kind)}
}

// readSmallFile returns a file such as ~/.forward. A file that is
// missing, unreadable or not a regular file is reported with Code
// statusBounce and Text saying why, so the agent can try the next one.
func readSmallFile(path string) reply {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return reply{Code: statusBounce, Text: syserr.Text(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return reply{Code: statusBounce, Text: "not a regular file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxForwardSize))
	if err != nil {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: fmt.Sprintf("cannot read file %s: %v", path, syserr.Text(err))}
	}
	return reply{Code: statusSent, Data: data}
}

// writeMessage copies the From_ line (commands), the prefix headers and
// the message to w.
func writeMessage(w io.Writer, j job, body io.Reader) error {
	bw := bufio.NewWriterSize(w, chunkSize)
	bw.WriteString(j.FromLine)
	bw.Write(j.Prefix)
	if _, err := io.Copy(bw, body); err != nil {
		return err
	}
	return bw.Flush()
}

// appendMbox appends to a UNIX mailbox or a /file target with pkg/mbox,
// locked with fcntl and a dot lock (held by the agent for spool
// mailboxes; optional for /file targets, whose folder may be read-only).
func appendMbox(j job, body io.Reader) reply {
	var lst syscall.Stat_t
	lerr := syscall.Lstat(j.Path, &lst)
	if lerr == nil && j.Kind == jobFile && lst.Mode&syscall.S_IFMT == syscall.S_IFCHR {
		// /dev/null and friends: no locking, no size bookkeeping.
		f, err := os.OpenFile(j.Path, os.O_WRONLY, 0)
		if err == nil {
			err = writeMessage(f, j, body)
			f.Close()
		}
		if err != nil {
			return reply{Code: statusDefer, DSN: "4.2.0", Text: fmt.Sprintf("cannot append message to file %s: %s", j.Path, syserr.Text(err))}
		}
		return reply{Code: statusSent}
	}
	if lerr == nil && j.Owner >= 0 && int(lst.Uid) != j.Owner {
		return reply{Code: statusDefer, DSN: "4.2.0", Text: fmt.Sprintf("cannot update mailbox %s. file has bad owner uid %d", j.Path, lst.Uid)}
	}
	locks := mbox.DefaultLocks
	if j.NoLock {
		locks.Dotlock = false
	}
	if j.Kind == jobFile {
		locks.Dotlock = false
		if unlock, err := mbox.DotLock(j.Path, mbox.LockTimeouts{Attempts: 1}); err == nil {
			defer unlock()
		}
	}
	var headers []string
	for _, h := range strings.Split(strings.TrimSuffix(string(j.Prefix), "\n"), "\n") {
		if h != "" {
			headers = append(headers, h)
		}
	}
	err := mbox.Deliver(j.Path, j.Sender, j.Time, body, mbox.Options{Locks: &locks, Create: true, UID: -1, GID: -1, Headers: headers})
	if err == nil {
		return reply{Code: statusSent}
	}
	var me *mbox.Error
	if !errors.As(err, &me) {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: err.Error()}
	}
	code := statusBounce
	if me.Temporary() {
		code = statusDefer
	}
	if errors.Is(err, errAborted) {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: "message transfer aborted"}
	}
	if j.Kind == jobFile {
		return reply{Code: code, DSN: me.DSN, Text: fmt.Sprintf("cannot append message to file %s: %s", j.Path, me.Reason)}
	}
	return reply{Code: code, DSN: me.DSN, Text: me.Error()}
}

// deliverMaildir stores the message in a Maildir with pkg/maildir (tmp/,
// fsync, then new/), creating the folders when missing.
func deliverMaildir(j job, body io.Reader) reply {
	pr, pw := io.Pipe()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		pw.CloseWithError(writeMessage(pw, j, body))
	}()
	path, err := maildir.Deliver(j.Path, pr, maildir.Options{UID: -1, GID: -1, Hostname: j.Hostname})
	pr.CloseWithError(err)
	// The copier reads the worker's job stream: it must be done before
	// the worker reads on (a failure before the file exists leaves it
	// mid-message).
	<-copied
	if err == nil {
		return reply{Code: statusSent, Text: path}
	}
	if errors.Is(err, errAborted) {
		return reply{Code: statusDefer, DSN: "4.2.0", Text: "message transfer aborted"}
	}
	if errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return reply{Code: statusBounce, DSN: "5.2.2", Text: err.Error()}
	}
	var me *maildir.Error
	if errors.As(err, &me) && me.Tmp != "" {
		// As Postfix: whatever kept the file from being made is
		// "create maildir file", a hard error unless the system error
		// is a passing one; a permission problem is also a warning.
		reason := fmt.Sprintf("create maildir file %s: %s", me.Tmp, syserr.Text(me.Err))
		rep := reply{Code: statusBounce, DSN: mbox.DSNFor(me.Err, "5.2.0"), Text: "maildir delivery failed: " + reason}
		if rep.DSN[0] == '4' {
			rep.Code = statusDefer
		}
		if errors.Is(me.Err, syscall.EACCES) {
			rep.Notes = []string{
				fmt.Sprintf("warning: maildir access problem for UID/GID=%d/%d: %s", os.Geteuid(), os.Getegid(), reason),
				"warning: perhaps you need to create the maildirs in advance",
			}
		}
		return rep
	}
	if errors.As(err, &me) && !me.Temporary() {
		return reply{Code: statusBounce, DSN: "5.2.0", Text: err.Error()}
	}
	return reply{Code: statusDefer, DSN: "4.2.0", Text: err.Error()}
}
