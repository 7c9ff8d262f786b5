package mbox

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Locks is a set of mailbox locking methods (mailbox_delivery_lock).
type Locks struct {
	Fcntl, Flock, Dotlock bool
}

// DefaultLocks is Postfix's mailbox_delivery_lock default on Linux.
var DefaultLocks = Locks{Fcntl: true, Dotlock: true}

// ParseLocks reads a mailbox_delivery_lock value such as "fcntl, dotlock".
func ParseLocks(value string) (Locks, error) {
	var l Locks
	for _, f := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		switch strings.ToLower(f) {
		case "fcntl":
			l.Fcntl = true
		case "flock":
			l.Flock = true
		case "dotlock":
			l.Dotlock = true
		default:
			return Locks{}, fmt.Errorf("invalid mailbox_delivery_lock setting: %q", f)
		}
	}
	return l, nil
}

// LockTimeouts are deliver_lock_attempts, deliver_lock_delay and
// stale_lock_time.
type LockTimeouts struct {
	Attempts  int           // 20 when zero
	Delay     time.Duration // 1s when zero
	StaleTime time.Duration // 500s when zero
}

func (t LockTimeouts) withDefaults() LockTimeouts {
	if t.Attempts <= 0 {
		t.Attempts = 20
	}
	if t.Delay <= 0 {
		t.Delay = time.Second
	}
	if t.StaleTime <= 0 {
		t.StaleTime = 500 * time.Second
	}
	return t
}

// ErrLocked reports that a lock could not be had within the allowed
// attempts; the delivery should be retried later (4.2.0).
var ErrLocked = errors.New("resource temporarily unavailable")

// DotLock creates path+".lock" exclusively, removing a lock older than
// the stale time, and retrying as t says. The returned function removes it.
func DotLock(path string, t LockTimeouts) (unlock func() error, err error) {
	t = t.withDefaults()
	lock := path + ".lock"
	for try := 0; ; try++ {
		fd, err := syscall.Open(lock, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err == nil {
			syscall.Close(fd)
			return func() error { return os.Remove(lock) }, nil
		}
		if err != syscall.EEXIST {
			return nil, fmt.Errorf("unable to create lock file %s: %w", lock, err)
		}
		if fi, serr := os.Lstat(lock); serr == nil && time.Since(fi.ModTime()) > t.StaleTime {
			os.Remove(lock) // stale: its holder died
			continue
		}
		if try+1 >= t.Attempts {
			return nil, fmt.Errorf("unable to create lock file %s: %w", lock, ErrLocked)
		}
		time.Sleep(t.Delay)
	}
}

// F_OFD_SETLK takes a lock owned by the open file description, so two
// descriptors in one process exclude each other, while processes that use
// classic fcntl locks (mutt, procmail, Postfix) still conflict with it.
const fOFDSetlk = 37

// lockFile takes the kernel locks l asks for on the open mailbox, retrying
// as t says.
func lockFile(f *os.File, l Locks, t LockTimeouts) error {
	t = t.withDefaults()
	fd := f.Fd()
	for try := 0; ; try++ {
		var err error
		if l.Fcntl {
			lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
			err = syscall.FcntlFlock(fd, fOFDSetlk, &lk)
			if err == syscall.EINVAL { // kernel without OFD locks
				err = syscall.FcntlFlock(fd, syscall.F_SETLK, &lk)
			}
		}
		if err == nil && l.Flock {
			err = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if err != nil && l.Fcntl {
				unlockFile(f, Locks{Fcntl: true})
			}
		}
		if err == nil {
			return nil
		}
		if err != syscall.EAGAIN && err != syscall.EACCES && err != syscall.EWOULDBLOCK {
			return fmt.Errorf("unable to lock for exclusive access: %w", err)
		}
		if try+1 >= t.Attempts {
			return fmt.Errorf("unable to lock for exclusive access: %w", ErrLocked)
		}
		time.Sleep(t.Delay)
	}
}

func unlockFile(f *os.File, l Locks) {
	fd := f.Fd()
	if l.Flock {
		syscall.Flock(int(fd), syscall.LOCK_UN)
	}
	if l.Fcntl {
		lk := syscall.Flock_t{Type: syscall.F_UNLCK}
		if syscall.FcntlFlock(fd, fOFDSetlk, &lk) == syscall.EINVAL {
			syscall.FcntlFlock(fd, syscall.F_SETLK, &lk)
		}
	}
}
