package master

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The descriptors the master gives every daemon, as Postfix's master gives
// its children a status pipe: the read end of a pipe whose write end only
// the master holds, and the locked pid file. The maillog file and the
// daemon's listening sockets follow (envLogFD, envListen).
const (
	statusFD = 3 // end of file: the master is gone
	lockFD   = 4 // pid/master.pid, locked while any process of this set runs
	firstFD  = 5
)

// envListen lists the listening sockets a daemon inherits, as
// "public/showq=5,public/flush=6": names below queue_directory and fds.
const envListen = "POSTDOVE_LISTEN"

// strayFDs makes sure no descriptor this process did not open itself
// outlives an exec: Go opens its own files close-on-exec, but what a
// process inherits stays open across exec, so a daemon's children (or the
// master's) would keep, say, the pipe `postfix start` waits on. The master
// closes what it inherited except keep (its ready pipe); a daemon marks
// its inherited descriptors (status pipe, lock, log, sockets)
// close-on-exec and keeps using them.
func strayFDs(closeThem bool, keep int) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	self := int(d.Fd())
	var fds []int
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err == nil && fd > 2 && fd != self && fd != keep {
			fds = append(fds, fd)
		}
	}
	d.Close()
	for _, fd := range fds {
		flags, err := fcntl(fd, syscall.F_GETFD, 0)
		if err != nil || flags&syscall.FD_CLOEXEC != 0 {
			continue // not ours to touch: the Go runtime's, or already safe
		}
		if closeThem {
			syscall.Close(fd)
		} else {
			syscall.CloseOnExec(fd)
		}
	}
	if keep > 2 {
		syscall.CloseOnExec(keep)
	}
}

func fcntl(fd, cmd, arg int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// daemonContext is cancelled by SIGTERM or SIGINT (postfix stop, reload)
// and when the master goes away: Postfix's daemons exit when their status
// pipe to the master breaks, so that a master killed alone leaves no
// daemons behind to run beside the next one. Like them, a daemon finishes
// the work under way first.
func daemonContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithCancel(ctx)
	if os.Getenv(envRole) != "" && os.Getenv(envRole) != "master" {
		status := os.NewFile(statusFD, "master status")
		go func() {
			var b [64]byte
			for {
				if _, err := status.Read(b[:]); err != nil {
					close(orphaned)
					cancel()
					return
				}
			}
		}()
	}
	return ctx, func() { cancel(); stop() }
}

// orphaned is closed when the master has gone away.
var orphaned = make(chan struct{})

// Lingering on the master's death (drainListener).
const (
	drainIdle = time.Second      // quiet this long: nobody hands work over
	drainMax  = 10 * time.Second // at most
)

// drainListener makes ln, once the master is gone, close only when it
// has been idle a while: every daemon stops at once then, and local must
// take the deliveries qmgr is still handing over instead of refusing
// them (qmgr would defer those messages). On SIGTERM (postfix stop,
// reload) the master has stopped qmgr first, and ln closes at once.
func drainListener(ln net.Listener) net.Listener { return &draining{Listener: ln} }

type draining struct {
	net.Listener
	open atomic.Int32
	last atomic.Int64 // time of the last accept or close, in ns
}

func (d *draining) Accept() (net.Conn, error) {
	c, err := d.Listener.Accept()
	if err != nil {
		return nil, err
	}
	d.open.Add(1)
	d.last.Store(time.Now().UnixNano())
	return &drainConn{Conn: c, d: d}, nil
}

func (d *draining) Close() error {
	select {
	case <-orphaned:
		start := time.Now()
		for end := start.Add(drainMax); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			last := time.Unix(0, d.last.Load())
			if last.Before(start) {
				last = start
			}
			if d.open.Load() == 0 && time.Since(last) > drainIdle {
				break
			}
		}
	default:
	}
	return d.Listener.Close()
}

type drainConn struct {
	net.Conn
	d    *draining
	once sync.Once
}

func (c *drainConn) Close() error {
	c.once.Do(func() {
		c.d.open.Add(-1)
		c.d.last.Store(time.Now().UnixNano())
	})
	return c.Conn.Close()
}

// inheritedListener is the listening socket the master bound for name
// ("private/local") and passed down (envListen).
func inheritedListener(name string) (net.Listener, error) {
	for _, kv := range strings.Split(os.Getenv(envListen), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k != name {
			continue
		}
		fd, err := strconv.Atoi(v)
		if err != nil || fd < firstFD {
			break
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		return net.FileListener(f)
	}
	return nil, fmt.Errorf("no socket %s from the master", name)
}
