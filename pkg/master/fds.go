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

// Lingering on the master's death (drainContext).
const (
	drainIdle = time.Second      // quiet this long: nobody hands work over
	drainMax  = 10 * time.Second // at most
)

// drainContext is ctx for a delivery agent's accept loop: once the master
// is gone it ends only when the agent has been idle a while (a counts
// its connections). Every daemon stops at once then, and local must take
// the deliveries qmgr is still handing over instead of leaving them in
// the socket's queue, where they would be reset when it exits (qmgr would
// defer those messages). On SIGTERM (postfix stop, reload) the master
// has stopped qmgr first, and it ends with ctx.
func drainContext(ctx context.Context, a *activity) context.Context {
	out, cancel := context.WithCancel(context.Background())
	go func() {
		<-ctx.Done()
		select {
		case <-orphaned:
			start := time.Now()
			for end := start.Add(drainMax); time.Now().Before(end) && !a.quiet(start, drainIdle); {
				time.Sleep(100 * time.Millisecond)
			}
		default:
		}
		cancel()
	}()
	return out
}

// activity counts the connections a daemon's listeners accepted that are
// still open, and when one last opened or closed.
type activity struct {
	open atomic.Int32
	last atomic.Int64 // in ns
}

// listener is ln with its connections counted in a.
func (a *activity) listener(ln net.Listener) net.Listener { return &counted{Listener: ln, a: a} }

// quiet reports whether no connection is open and none has opened or
// closed for d, nor since start.
func (a *activity) quiet(start time.Time, d time.Duration) bool {
	last := time.Unix(0, a.last.Load())
	if last.Before(start) {
		last = start
	}
	return a.open.Load() == 0 && time.Since(last) >= d
}

type counted struct {
	net.Listener
	a *activity
}

func (l *counted) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.a.open.Add(1)
	l.a.last.Store(time.Now().UnixNano())
	return &countedConn{Conn: c, a: l.a}, nil
}

type countedConn struct {
	net.Conn
	a    *activity
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.a.open.Add(-1)
		c.a.last.Store(time.Now().UnixNano())
	})
	return c.Conn.Close()
}

// exitWhenIdle closes lns once they have had no client for max_idle
// (maxIdle; none when not positive), as a Postfix daemon exits after
// max_idle seconds without work: the master starts another when the next
// client connects (startOnDemand). The connections under way are not
// touched: the daemon's Accept fails and it ends as at a reload. idled
// reports whether that happened.
func exitWhenIdle(ctx context.Context, maxIdle time.Duration, a *activity, lns ...net.Listener) (idled func() bool) {
	var fired atomic.Bool
	if maxIdle <= 0 {
		return fired.Load
	}
	start := time.Now()
	go func() {
		t := time.NewTicker(min(maxIdle/4, time.Second))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if a.quiet(start, maxIdle) {
				fired.Store(true)
				closeAll(lns...)
				return
			}
		}
	}()
	return fired.Load
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
