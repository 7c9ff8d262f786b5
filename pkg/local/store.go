package local

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
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

// readSmallFile returns a file such as ~/.forward. A missing file is
// reported with Code statusBounce and DSN "" so the agent tries the next.
func readSmallFile(path string) reply {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return reply{Code: statusBounce}
		}
		return reply{Code: statusDefer, DSN: "4.3.0", Text: fmt.Sprintf("cannot open file %s: %v", path, errText(err))}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return reply{Code: statusBounce}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxForwardSize))
	if err != nil {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: fmt.Sprintf("cannot read file %s: %v", path, errText(err))}
	}
	return reply{Code: statusSent, Data: data}
}

// errText is the C library's wording of an error, as Postfix prints it.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" {
			return string(s[0]-'a'+'A') + s[1:]
		}
	}
	return err.Error()
}

// writeMessage copies the From_ line, the prefix headers and the message to
// w; with quote it escapes "From " lines and ends with an empty line.
func writeMessage(w io.Writer, j job, body io.Reader) error {
	bw := bufio.NewWriterSize(w, chunkSize)
	bw.WriteString(j.FromLine)
	bw.Write(j.Prefix)
	br := bufio.NewReaderSize(body, chunkSize)
	atLineStart, last := true, byte('\n')
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if j.Quote && atLineStart && bytes.HasPrefix(line, []byte("From ")) {
				bw.WriteByte('>')
			}
			bw.Write(line)
			last = line[len(line)-1]
			atLineStart = last == '\n'
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if j.Quote {
		if last != '\n' {
			bw.WriteByte('\n')
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// appendMbox appends to a UNIX mailbox or a /file target, locked with a
// dot lock (unless the agent holds it) and fcntl; on error the file is
// truncated to its old size.
func appendMbox(j job, body io.Reader) reply {
	what := "mailbox " + j.Path
	if j.Kind == jobFile {
		what = "file " + j.Path
	}
	fail := func(err error, format string, args ...any) reply {
		code, dsn := statusDefer, "4.2.0"
		if errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.ENOSPC) {
			code, dsn = statusBounce, "5.2.2"
			if errors.Is(err, syscall.ENOSPC) {
				code, dsn = statusDefer, "4.3.0"
			}
		}
		return reply{Code: code, DSN: dsn, Text: fmt.Sprintf("cannot update "+what+". "+format, args...)}
	}
	if !j.NoLock {
		unlock, err := dotLock(j.Path)
		switch {
		case err == nil:
			defer unlock()
		case j.Kind == jobFile && !errors.Is(err, os.ErrExist):
			// a file in a folder we may not write: fcntl lock only
		default:
			return fail(err, "unable to lock for exclusive access: %s", errText(err))
		}
	}
	f, err := os.OpenFile(j.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0600)
	if err != nil {
		return fail(err, "cannot open file: %s", errText(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail(err, "cannot stat: %s", errText(err))
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	switch {
	case j.Kind == jobMbox && !st.Mode().IsRegular():
		return reply{Code: statusBounce, DSN: "5.2.0", Text: fmt.Sprintf("cannot update %s. file is not a regular file", what)}
	case sys != nil && st.Mode().IsRegular() && sys.Nlink > 1:
		return reply{Code: statusBounce, DSN: "5.2.0", Text: fmt.Sprintf("cannot update %s. file has too many hard links", what)}
	case j.Owner >= 0 && sys != nil && int(sys.Uid) != j.Owner:
		return reply{Code: statusDefer, DSN: "4.2.0", Text: fmt.Sprintf("cannot update %s. file has bad owner uid %d", what, sys.Uid)}
	}
	if err := fcntlLock(f); err != nil {
		return fail(err, "unable to lock for exclusive access: %s", errText(err))
	}
	size := st.Size()
	if st.Mode().IsRegular() {
		err = writeMessage(f, j, body)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Truncate(size)
			if errors.Is(err, errAborted) {
				return reply{Code: statusDefer, DSN: "4.3.0", Text: "message transfer aborted"}
			}
			return fail(err, "error writing message: %s", errText(err))
		}
	} else if err = writeMessage(f, j, body); err != nil {
		return fail(err, "error writing message: %s", errText(err))
	}
	return reply{Code: statusSent}
}

// dotLock creates path.lock, retrying for a while, and removes a lock
// older than 500 seconds as stale.
func dotLock(path string) (func(), error) {
	lock := path + ".lock"
	var err error
	for i := 0; i < 50; i++ {
		var f *os.File
		f, err = os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
		if err == nil {
			f.Close()
			return func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if st, e := os.Lstat(lock); e == nil && time.Since(st.ModTime()) > 500*time.Second {
			os.Remove(lock)
			continue
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, err
}

// fcntlLock takes an exclusive fcntl lock, retrying for a while.
func fcntlLock(f *os.File) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	var err error
	for i := 0; i < 50; i++ {
		if err = syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

var maildirSeq atomic.Uint64

// deliverMaildir writes the message to tmp/ and links it into new/,
// creating the Maildir folders when missing.
func deliverMaildir(j job, body io.Reader) reply {
	fail := func(format string, args ...any) reply {
		return reply{Code: statusDefer, DSN: "4.2.0", Text: fmt.Sprintf(format, args...)}
	}
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(j.Path, sub), 0700); err != nil {
			return fail("create maildir file %s: %s", filepath.Join(j.Path, sub), errText(err))
		}
	}
	now := time.Now()
	host := j.Hostname
	if host == "" {
		host = "localhost"
	}
	tmpName := fmt.Sprintf("%d.P%dQ%dM%d.%s", now.Unix(), os.Getpid(), maildirSeq.Add(1), now.Nanosecond()/1000, host)
	tmp := filepath.Join(j.Path, "tmp", tmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return fail("create maildir file %s: %s", tmp, errText(err))
	}
	err = writeMessage(f, j, body)
	if err == nil {
		err = f.Sync()
	}
	var st syscall.Stat_t
	if err == nil {
		err = syscall.Fstat(int(f.Fd()), &st)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, errAborted) {
			return fail("message transfer aborted")
		}
		if errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
			return reply{Code: statusBounce, DSN: "5.2.2", Text: fmt.Sprintf("create maildir file %s: %s", tmp, errText(err))}
		}
		return fail("create maildir file %s: %s", tmp, errText(err))
	}
	newName := fmt.Sprintf("%d.V%xI%xM%d.%s", now.Unix(), st.Dev, st.Ino, now.Nanosecond()/1000, host)
	dst := filepath.Join(j.Path, "new", newName)
	if err := os.Link(tmp, dst); err != nil {
		os.Remove(tmp)
		return fail("link to %s: %s", dst, errText(err))
	}
	os.Remove(tmp)
	if d, err := os.Open(filepath.Join(j.Path, "new")); err == nil {
		d.Sync()
		d.Close()
	}
	return reply{Code: statusSent, Text: dst}
}
