package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"postdove/pkg/maillog"
	"postdove/pkg/postconf"
	"postdove/pkg/queue"
)

// A ServeFunc is the daemon of a master.cf command that serves clients on
// sockets the master binds (smtpd for `smtp inet ... smtpd`). cfg is
// main.cf with the service's -o settings applied. It accepts sessions on
// ln until Accept fails (the master closes ln on postfix reload or stop,
// or when it goes away), lets the sessions under way finish, and returns;
// when ctx is done (postfix stop) it ends them at once instead. ln accepts
// at most the service's process limit of sessions at a time: the rest
// wait in the listen queue.
type ServeFunc func(ctx context.Context, cfg *postconf.Config, log *maillog.Logger, ln net.Listener) error

var servers = map[string]ServeFunc{}

// RegisterServer makes the master run serve for the master.cf services
// whose command is command. The package that implements the daemon calls
// it from an init function; the master leaves services whose command has
// no server alone.
func RegisterServer(command string, serve ServeFunc) { servers[command] = serve }

// Ports of the services master.cf names, for a system whose services(5)
// lacks them.
var knownPorts = map[string]int{"smtp": 25, "submission": 587, "smtps": 465, "submissions": 465}

// serviceSockets are the names (for m.sockets and envListen) of the
// sockets the master binds for service s: "inet/127.0.0.1:25" for each
// address an inet service listens on, as inet_interfaces and
// inet_protocols say unless its name has a host part (`127.0.0.1:2525`);
// "private/name" or "public/name" for a unix service.
func serviceSockets(cfg *postconf.Config, s postconf.Service) ([]string, error) {
	switch s.Type {
	case "unix":
		if s.Private == "n" {
			return []string{queue.Public + "/" + s.Name}, nil
		}
		return []string{queue.Private + "/" + s.Name}, nil
	case "inet":
	default:
		return nil, fmt.Errorf("unsupported service type: %s", s.Type)
	}
	host, port := "", s.Name
	if i := strings.LastIndex(s.Name, ":"); i >= 0 {
		host, port = strings.Trim(s.Name[:i], "[]"), s.Name[i+1:]
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		if n, err = net.LookupPort("tcp", port); err != nil {
			if n = knownPorts[port]; n == 0 {
				return nil, fmt.Errorf("unknown service: %s/tcp", port)
			}
		}
	}
	v4, v6, err := inetProtocols(cfg.Get("inet_protocols"))
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	if host != "" && host != "*" {
		if ips, err = hostIPs(host); err != nil {
			err = fmt.Errorf("bad hostname or network address: %s", host)
		}
	} else {
		ips, err = inetInterfaces(cfg.Get("inet_interfaces"), v4, v6)
	}
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for _, ip := range ips {
		if ip.To4() != nil && !v4 || ip.To4() == nil && !v6 {
			continue
		}
		name := "inet/" + net.JoinHostPort(ip.String(), strconv.Itoa(n))
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	if names == nil {
		return nil, fmt.Errorf("all network protocols are disabled (inet_protocols = %s) for %s", cfg.Get("inet_protocols"), s.Name)
	}
	return names, nil
}

// inetProtocols reads inet_protocols: ipv4, ipv6, all, or a list.
func inetProtocols(v string) (v4, v6 bool, err error) {
	for _, p := range strings.FieldsFunc(v, listSep) {
		switch strings.ToLower(p) {
		case "all":
			v4, v6 = true, true
		case "ipv4":
			v4 = true
		case "ipv6":
			v6 = true
		default:
			return false, false, fmt.Errorf("bad inet_protocols value: %s", p)
		}
	}
	if v6 && !ipv6Supported() {
		v6 = false // Postfix too leaves IPv6 out on a kernel without it
	}
	if !v4 && !v6 {
		return false, false, fmt.Errorf("all network protocols are disabled (inet_protocols = %s)", v)
	}
	return v4, v6, nil
}

// inetInterfaces are the addresses inet_interfaces names: all (the
// wildcard addresses), loopback-only, or host names and addresses
// (localhost is the loopback addresses, as the resolver says).
func inetInterfaces(v string, v4, v6 bool) ([]net.IP, error) {
	var ips []net.IP
	for _, w := range strings.FieldsFunc(v, listSep) {
		switch strings.ToLower(w) {
		case "all":
			if v4 {
				ips = append(ips, net.IPv4zero)
			}
			if v6 {
				ips = append(ips, net.IPv6unspecified)
			}
		case "loopback-only":
			ips = append(ips, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
		default:
			more, err := hostIPs(w)
			if err != nil {
				return nil, fmt.Errorf("config variable inet_interfaces: %v", err)
			}
			ips = append(ips, more...)
		}
	}
	if ips == nil {
		return nil, fmt.Errorf("parameter inet_interfaces: no local interface found for %s", v)
	}
	return ips, nil
}

// hostIPs is an address, or a host name's addresses.
func hostIPs(h string) ([]net.IP, error) {
	h = strings.Trim(h, "[]")
	if ip := net.ParseIP(h); ip != nil {
		return []net.IP{ip}, nil
	}
	ips, err := net.LookupIP(h)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("host not found: %s", h)
	}
	return ips, nil
}

// ipv6Supported tells whether the kernel has IPv6 sockets.
func ipv6Supported() bool {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM, 0)
	if err != nil {
		return false
	}
	syscall.Close(fd)
	return true
}

func listSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }

// bindInet binds the TCP address of name ("inet/[::1]:25"). An IPv6
// socket takes IPv6 only, as Postfix's, so that the IPv4 one can exist
// beside it. An address in use is retried for wait: after a reload, a
// daemon of before may still be closing it.
func bindInet(name string, wait time.Duration) (*os.File, error) {
	addr := strings.TrimPrefix(name, "inet/")
	network := "tcp4"
	if strings.HasPrefix(addr, "[") {
		network = "tcp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if network == "tcp6" {
			c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
			})
		}
		return serr
	}}
	var ln net.Listener
	var err error
	for end := time.Now().Add(wait); ; time.Sleep(100 * time.Millisecond) {
		ln, err = lc.Listen(context.Background(), network, addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	return ln.(*net.TCPListener).File()
}

// runServer is the daemon of a registered server (RegisterServer): it
// serves on the sockets the master passed down, SIGHUP (postfix reload)
// makes it stop accepting and exit once its sessions are over, SIGTERM
// (postfix stop) ends them.
func runServer(dir, command string, serve ServeFunc) error {
	d, cancel, err := newDaemon(dir, command)
	if err != nil {
		return err
	}
	defer cancel()
	var lns []net.Listener
	for _, kv := range strings.Split(os.Getenv(envListen), ",") {
		name, _, _ := strings.Cut(kv, "=")
		if name == "" {
			continue
		}
		ln, err := inheritedListener(name)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	if lns == nil {
		return errors.New("no socket from the master")
	}
	limit, err := processLimit(d.cfg, d.svc)
	if err != nil {
		return err
	}
	a := &activity{}
	counted := make([]net.Listener, len(lns))
	for i, l := range lns {
		counted[i] = a.listener(l)
	}
	ln := newLimitListener(counted, limit)
	d.exitWhenIdle(a, ln)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		select {
		case <-hup:
		case <-d.ctx.Done():
		}
		ln.Close()
	}()
	err = serve(d.ctx, d.cfg, d.log, ln)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// processLimit is the service's process limit (master.cf's seventh
// column, - for default_process_limit); 0 is no limit.
func processLimit(cfg *postconf.Config, s postconf.Service) (int, error) {
	v, what := s.Maxproc, "process limit"
	if v == "" || v == "-" {
		v, what = cfg.Get("default_process_limit"), "default_process_limit"
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: bad %s: %s", filepath.Base(s.File), what, v)
	}
	return n, nil
}

// limitListener accepts on several listeners at most limit connections
// open at a time (0: no limit); until one closes, the others wait in the
// kernel's listen queue. Once closed, Accept still returns the
// connections already taken from the kernel, so that none is dropped;
// then net.ErrClosed.
type limitListener struct {
	lns   []net.Listener
	slots chan struct{}
	conns chan net.Conn
	done  chan struct{} // closed by Close
	gone  chan struct{} // closed when every accept loop has ended
	once  sync.Once
	mu    sync.Mutex
	err   error // the first error other than Close's
}

func newLimitListener(lns []net.Listener, limit int) *limitListener {
	l := &limitListener{lns: lns, conns: make(chan net.Conn), done: make(chan struct{}), gone: make(chan struct{})}
	if limit > 0 {
		l.slots = make(chan struct{}, limit)
	}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.accept(ln)
		}()
	}
	go func() {
		wg.Wait()
		close(l.gone)
	}()
	return l
}

// accept takes connections from ln and hands each out once a session
// slot is free. It takes one from the kernel before waiting for a slot,
// so that a listener no client uses never holds a slot another one's
// clients wait for; the client waits just the same, without a banner.
// Once the listener is closed, a connection taken is handed out anyway,
// beyond the limit, rather than dropped.
func (l *limitListener) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			l.mu.Lock()
			if l.err == nil {
				l.err = err
			}
			l.mu.Unlock()
			l.Close()
			return
		}
		held := l.slots != nil
		if held {
			select {
			case l.slots <- struct{}{}:
			case <-l.done:
				held = false
			}
		}
		l.conns <- &limitConn{Conn: c, l: l, held: held}
	}
}

func (l *limitListener) release() { <-l.slots }

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.gone:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		for _, ln := range l.lns {
			ln.Close()
		}
	})
	return nil
}

func (l *limitListener) Addr() net.Addr { return l.lns[0].Addr() }

type limitConn struct {
	net.Conn
	l    *limitListener
	held bool // it has a session slot
	once sync.Once
}

func (c *limitConn) Close() error {
	if c.held {
		c.once.Do(c.l.release)
	}
	return c.Conn.Close()
}
