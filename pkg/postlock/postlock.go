// Package postlock is postdove's postlock(1): it locks a mailbox file the
// way postdove's local delivery does (mailbox_delivery_lock: dotlock,
// fcntl, flock, with deliver_lock_attempts, deliver_lock_delay and
// stale_lock_time), runs a command while holding the locks, and exits
// with the command's status, as Postfix's postlock does. A lock that
// cannot be had exits 75 (EX_TEMPFAIL).
//
// API: Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int.
package postlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/spf13/pflag"

	"postdove/pkg/mbox"
	"postdove/pkg/postconf"
	"postdove/pkg/postqueue"
	"postdove/pkg/syserr"
)

// Usage is postlock's usage line, as Postfix's prints it.
const Usage = "usage: postlock [-c config_dir] [-l lock_style] [-v] folder command..."

// ExTempFail is the exit status of a usage or lock failure (EX_TEMPFAIL).
const ExTempFail = 75

// Main runs postlock with args (without the program name) and returns its
// exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("postlock", pflag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false)
	configDir := fs.StringP("config", "c", "", "")
	style := fs.StringP("lock", "l", "", "")
	fs.CountP("verbose", "v", "")
	fatal := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "postlock: fatal: "+format+"\n", a...)
		return code
	}
	if err := fs.Parse(args); err != nil {
		if msg := postqueue.GetoptMessage("postlock", err); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return fatal(ExTempFail, "%s", Usage)
	}
	if fs.NArg() < 2 {
		return fatal(ExTempFail, "%s", Usage)
	}
	cfg, err := postconf.Load(postconf.ConfigDir(*configDir))
	if err != nil {
		return fatal(ExTempFail, "%v", err)
	}
	value := cfg.Get("mailbox_delivery_lock")
	if fs.Changed("lock") {
		value = *style
	}
	locks, err := mbox.ParseLocks(value)
	if err != nil {
		return fatal(ExTempFail, "unknown mailbox_delivery_lock value %q in %q", badWord(value), value)
	}
	timeouts := mbox.LockTimeouts{
		Attempts:  cfg.Int("deliver_lock_attempts"),
		Delay:     cfg.Duration("deliver_lock_delay"),
		StaleTime: cfg.Duration("stale_lock_time"),
	}
	folder := fs.Arg(0)
	unlock, err := lock(folder, locks, timeouts)
	if err != nil {
		return fatal(ExTempFail, "open file %s: %s", folder, err)
	}
	code := run(fs.Args()[1:], stdin, stdout, stderr)
	unlock()
	return code
}

// lock creates folder when missing (mode 0600) and takes the locks:
// the dot lock first, then the kernel locks on the open file.
func lock(folder string, locks mbox.Locks, t mbox.LockTimeouts) (unlock func(), err error) {
	undotlock := func() error { return nil }
	if locks.Dotlock {
		undotlock, err = mbox.DotLock(folder, t)
		if errors.Is(err, mbox.ErrLocked) {
			return nil, fmt.Errorf("unable to create lock file %s.lock: %s", folder, syserr.Text(syscall.EEXIST))
		}
		if err != nil {
			return nil, errors.New(syserr.Text(err))
		}
	}
	f, err := os.OpenFile(folder, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		undotlock()
		return nil, errors.New(syserr.Text(err))
	}
	unlockFolder, err := mbox.LockFolder(f, mbox.Locks{Fcntl: locks.Fcntl, Flock: locks.Flock}, t)
	if err != nil {
		f.Close()
		undotlock()
		if errors.Is(err, mbox.ErrLocked) {
			return nil, fmt.Errorf("unable to lock for exclusive access: %s", syserr.Text(syscall.EAGAIN))
		}
		return nil, errors.New(syserr.Text(err))
	}
	return func() {
		unlockFolder()
		f.Close()
		undotlock()
	}, nil
}

// run runs the command and returns its exit status: 1 when it cannot be
// started or is killed by a signal, as with Postfix's postlock.
func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if code := ee.ExitCode(); code >= 0 {
			return code
		}
		return 1
	}
	var pe *exec.Error
	if errors.As(err, &pe) {
		err = pe.Err
	}
	fmt.Fprintf(stderr, "postlock: fatal: execvp %s: %s\n", argv[0], syserr.Text(err))
	return 1
}

// badWord is the first word of a mailbox_delivery_lock value that is not
// a lock method.
func badWord(value string) string {
	for _, w := range postconf.SplitList(value) {
		if _, err := mbox.ParseLocks(w); err != nil {
			return w
		}
	}
	return value
}
