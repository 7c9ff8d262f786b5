package master

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// onDemand tells whether the master starts role's process only when a
// client connects to one of its sockets, as Postfix's master does for
// every service but those it wakes on a timer (pickup, qmgr): delivery
// agents, showq and flush, and servers (smtpd). Such a process exits
// after max_idle without a client (exitWhenIdle), and the next client
// starts another.
func onDemand(role string) bool {
	return agents[role] || role == "showq" || servers[role] != nil
}

// watch waits for a client on the sockets of a service whose process
// is not running.
type watch struct {
	service, role string
	cred          *syscall.Credential
	sockets       []string
	stop          *os.File // closing the write end of a pipe ends the wait
}

// arm starts watching the sockets of service (bound already): the first
// client that connects starts its process (m.woken). The connection waits
// in the socket's backlog until the process accepts it.
func (m *master) arm(service, role string, cred *syscall.Credential, names []string) {
	m.disarm(service)
	w := &watch{service: service, role: role, cred: cred, sockets: names}
	fds := make([]unix.PollFd, 0, len(names)+1)
	closeFDs := func() {
		for _, p := range fds {
			unix.Close(int(p.Fd))
		}
	}
	for _, name := range names {
		f := m.sockets[name]
		if f == nil {
			closeFDs()
			m.log.Warning("%s: no socket %s", service, name)
			return
		}
		// A copy of its own: the master's descriptor goes to the
		// process it starts, and File.Fd would change its mode.
		rc, err := f.SyscallConn()
		if err != nil {
			closeFDs()
			m.log.Warning("%s: %v", service, err)
			return
		}
		var dup int
		var derr error
		rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
		if derr != nil {
			closeFDs()
			m.log.Warning("%s: dup %s: %v", service, name, derr)
			return
		}
		fds = append(fds, unix.PollFd{Fd: int32(dup), Events: unix.POLLIN})
	}
	r, wr, err := os.Pipe()
	if err != nil {
		closeFDs()
		m.log.Warning("%s: %v", service, err)
		return
	}
	w.stop = wr
	fds = append(fds, unix.PollFd{Fd: int32(r.Fd()), Events: unix.POLLIN})
	m.watches[service] = w
	go func() {
		defer r.Close()
		defer closeFDs()
		for {
			_, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || fds[len(fds)-1].Revents != 0 {
				return // disarmed
			}
			m.woken <- w
			return
		}
	}()
}

// disarm stops watching service's sockets.
func (m *master) disarm(service string) {
	if w := m.watches[service]; w != nil {
		w.stop.Close()
		delete(m.watches, service)
	}
}

// disarmAll stops every watch (postfix stop, reload).
func (m *master) disarmAll() {
	for s := range m.watches {
		m.disarm(s)
	}
}

// wake starts the process of a watched service a client connected to,
// unless the watch was ended meanwhile.
func (m *master) wake(w *watch) {
	if m.stopped || m.watches[w.service] != w {
		return
	}
	m.disarm(w.service)
	if m.start(w.service, w.role, w.cred, w.sockets) == nil {
		// Not started (logged): tried again when a client waits, but
		// not at once, as for a daemon that dies at start.
		time.Sleep(time.Second)
		m.arm(w.service, w.role, w.cred, w.sockets)
	}
}
