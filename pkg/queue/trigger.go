package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Trigger requests understood by qmgr, as in Postfix.
const (
	QmgrScanDeferred byte = 'D' // scan the deferred queue
	QmgrScanIncoming byte = 'I' // scan the incoming queue
	QmgrScanAll      byte = 'A' // scan all queues (postqueue -f)
	QmgrFlushDead    byte = 'F' // forget dead destinations (postqueue -f)
	Wakeup           byte = 'W' // generic wakeup (pickup)
)

// ErrDown means nobody listens on the trigger: the mail system is down.
// Callers that only want to nudge a running daemon ignore it.
var ErrDown = errors.New("mail system is down")

// Trigger writes request byte req to the FIFO public/SERVICE (e.g. "qmgr",
// "pickup") without blocking. It returns an error wrapping ErrDown when
// the FIFO is missing or has no reader; a full FIFO is not an error (the
// daemon has wakeups pending).
func Trigger(queueDir, service string, req byte) error {
	p := filepath.Join(queueDir, Public, service)
	fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w: %w", p, err, ErrDown)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return fmt.Errorf("%s: not a fifo: %w", p, ErrDown)
	}
	if _, err := syscall.Write(fd, []byte{req}); err != nil && err != syscall.EAGAIN {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// Listen creates (or reuses) the FIFO public/SERVICE, mode 0622 like
// Postfix's, and returns the request bytes written to it. Closing the
// Closer stops the listener and closes the channel.
func Listen(queueDir, service string) (<-chan byte, io.Closer, error) {
	p := filepath.Join(queueDir, Public, service)
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeNamedPipe == 0 {
		if err := os.Remove(p); err != nil {
			return nil, nil, fmt.Errorf("remove %s: %w", p, unwrapPath(err))
		}
	}
	if err := syscall.Mkfifo(p, 0622); err != nil && err != syscall.EEXIST {
		return nil, nil, fmt.Errorf("create fifo %s: %w", p, err)
	}
	_ = os.Chmod(p, 0622) // mkfifo obeys the umask
	// Opened read-write so that the FIFO never reports end of file when
	// the last writer goes away.
	f, err := os.OpenFile(p, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", p, unwrapPath(err))
	}
	ch := make(chan byte, 64)
	go func() {
		defer close(ch)
		buf := make([]byte, 64)
		for {
			n, err := f.Read(buf)
			for _, b := range buf[:n] {
				ch <- b
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, f, nil
}
