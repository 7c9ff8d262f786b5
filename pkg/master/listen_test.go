package master

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postdove/pkg/maillog"
	"postdove/pkg/postconf"
)

// testServe is a small line server standing in for smtpd: its banner
// and replies carry the myhostname it was started with and its pid.
func testServe(ctx context.Context, cfg *postconf.Config, log *maillog.Logger, ln net.Listener) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	go func() {
		<-ctx.Done()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
	}()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		mu.Lock()
		open[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { mu.Lock(); delete(open, c); mu.Unlock(); c.Close() }()
			host := cfg.Get("myhostname")
			fmt.Fprintf(c, "220 %s %d\r\n", host, os.Getpid())
			r := bufio.NewScanner(c)
			for r.Scan() {
				if strings.EqualFold(strings.TrimSpace(r.Text()), "QUIT") {
					fmt.Fprintf(c, "221 bye\r\n")
					return
				}
				fmt.Fprintf(c, "250 %s\r\n", host)
			}
		}()
	}
}

// envSpawnTest makes this test binary start a master for the
// configuration directory it names and print its pid.
const envSpawnTest = "POSTDOVE_SPAWN_TEST"

// instance is a private mail system run by this test binary as master.
type instance struct {
	t   *testing.T
	dir string
	pid int
}

func startInstance(t *testing.T, mainCF, masterCF string) *instance {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the master binds and changes user as root")
	}
	dir := instanceDir(t)
	in := &instance{t: t, dir: dir}
	in.write(mainCF, masterCF)
	pid, err := spawn(t, dir)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	in.pid = pid
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		for end := time.Now().Add(20 * time.Second); Alive(pid) && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
		syscall.Kill(-pid, syscall.SIGKILL)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			t.Logf("maillog:\n%s", b)
		}
	})
	return in
}

// instanceDir is a configuration directory mail_owner can reach.
func instanceDir(t *testing.T) string {
	if os.Getuid() != 0 {
		t.Skip("the master binds and changes user as root")
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return dir
}

// spawn starts a master for dir and returns its pid.
func spawn(t *testing.T, dir string) (int, error) {
	// The daemons run as mail_owner: they need a copy of this binary
	// they may execute.
	exe := filepath.Join(dir, "master.test")
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(exe, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envSpawnTest+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	return strconv.Atoi(string(out))
}

func (in *instance) write(mainCF, masterCF string) {
	base := fmt.Sprintf("queue_directory = %s/spool\nmaillog_file = %s/maillog\nmail_owner = postfix\nsetgid_group = postdrop\ncompatibility_level = 3.6\n", in.dir, in.dir)
	if err := os.WriteFile(filepath.Join(in.dir, "main.cf"), []byte(base+mainCF), 0o644); err != nil {
		in.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in.dir, "master.cf"), []byte(masterCF), 0o644); err != nil {
		in.t.Fatal(err)
	}
}

func (in *instance) reload(mainCF, masterCF string) {
	in.write(mainCF, masterCF)
	if err := syscall.Kill(in.pid, syscall.SIGHUP); err != nil {
		in.t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// session is one client connection and its banner.
type session struct {
	c      net.Conn
	r      *bufio.Reader
	banner string
}

func dial(addr string) (*session, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	s := &session{c: c, r: bufio.NewReader(c)}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s.banner, err = s.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *session) cmd(line string) (string, error) {
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(s.c, "%s\r\n", line); err != nil {
		return "", err
	}
	return s.r.ReadString('\n')
}

// listening is what `ss -ltnp` shows listening on TCP port.
func listening(t *testing.T, port string) string {
	out, err := exec.Command("ss", "-ltnpH", "sport = :"+port).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	return string(out)
}

// randomLoopback is 127.0.0.x with x random, so that tests running at
// once, and whatever else listens on port 25, do not meet.
func randomLoopback() string { return fmt.Sprintf("127.0.%d.%d", rand.IntN(250)+1, rand.IntN(250)+2) }

// The master binds master.cf's `smtp inet` service on inet_interfaces,
// port 25, and its daemon serves it as mail_owner; a reload moves the
// listener to the new inet_interfaces and gives new sessions the new
// main.cf while an open session goes on with the old one; a service
// added with a host:port name listens, bounded by its process limit, and
// stops listening when removed.
func TestInetListeners(t *testing.T) {
	a, b := randomLoopback(), randomLoopback()
	for a == b {
		b = randomLoopback()
	}
	smtp := "smtp      inet  n       -       n       -       -       smtpd\n"
	sub := a + ":2527 inet n - n - - smtpd\n  -o myhostname=three.example\n"
	in := startInstance(t, "myhostname = one.example\ninet_interfaces = "+a+"\n", smtp+sub)

	// A service's -o settings apply to its daemon.
	if s, err := dial(a + ":2527"); err != nil || !strings.HasPrefix(s.banner, "220 three.example ") {
		t.Errorf("service with -o myhostname: %v, %+v", err, s)
	} else {
		s.c.Close()
	}

	s1, err := dial(a + ":25")
	if err != nil {
		t.Fatalf("connect %s:25: %v", a, err)
	}
	defer s1.c.Close()
	var pid int
	var host string
	if _, err := fmt.Sscanf(s1.banner, "220 %s %d", &host, &pid); err != nil || host != "one.example" {
		t.Fatalf("banner %q", s1.banner)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t999\t999\t999\t999\n") && !strings.Contains(string(status), fmt.Sprintf("\nUid:\t%d\t", ownerUID(t))) {
		t.Errorf("the daemon does not run as mail_owner:\n%s", status)
	}
	ss := listening(t, "25")
	if !strings.Contains(ss, a+":25 ") || !strings.Contains(ss, `"smtpd"`) || strings.Contains(ss, b+":25 ") || strings.Contains(ss, "0.0.0.0:25 ") {
		t.Errorf("ss -ltnp:\n%s", ss)
	}

	// Reload: the listener moves to b, new sessions see the new
	// myhostname, the open one keeps its own, and 127.0.0.1-style
	// host:port services start.
	limited := a + ":2526 inet n - n - 1 smtpd\n"
	in.reload("myhostname = two.example\ninet_interfaces = "+b+"\n", smtp+limited)
	waitFor(t, "the listener on "+b+":25", func() bool {
		s, err := dial(b + ":25")
		if err != nil {
			return false
		}
		s.c.Close()
		if !strings.HasPrefix(s.banner, "220 two.example ") {
			t.Fatalf("new session after reload: %q", s.banner)
		}
		return true
	})
	if _, err := net.DialTimeout("tcp", a+":25", 5*time.Second); err == nil {
		t.Errorf("%s:25 still listens after inet_interfaces moved", a)
	}
	if reply, err := s1.cmd("NOOP"); err != nil || reply != "250 one.example\r\n" {
		t.Errorf("session open across the reload: %q, %v", reply, err)
	}

	// Process limit 1: a second session waits in the listen queue until
	// the first is over.
	var l1 *session
	waitFor(t, "the listener on "+a+":2526", func() bool {
		l1, err = dial(a + ":2526")
		return err == nil
	})
	c2, err := net.DialTimeout("tcp", a+":2526", 5*time.Second)
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := c2.Read(make([]byte, 100)); err == nil {
		t.Fatalf("a second session beyond the process limit got %d bytes", n)
	}
	l1.cmd("QUIT")
	l1.c.Close()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if banner, err := bufio.NewReader(c2).ReadString('\n'); err != nil || !strings.HasPrefix(banner, "220 two.example ") {
		t.Fatalf("the waiting session once the first ended: %q, %v", banner, err)
	}

	// Removed from master.cf, the service stops listening; a session
	// on a listener that stays keeps its settings, a new one gets the
	// new ones.
	s2, err := dial(b + ":25")
	if err != nil {
		t.Fatal(err)
	}
	in.reload("myhostname = four.example\ninet_interfaces = "+b+"\n", smtp)
	waitFor(t, "new sessions with the new myhostname", func() bool {
		s, err := dial(b + ":25")
		if err != nil {
			t.Fatalf("new session during reload: %v", err)
		}
		s.c.Close()
		return strings.HasPrefix(s.banner, "220 four.example ")
	})
	if reply, err := s2.cmd("NOOP"); err != nil || reply != "250 two.example\r\n" {
		t.Errorf("session open across the reload on the same listener: %q, %v", reply, err)
	}
	waitFor(t, a+":2526 to stop listening", func() bool {
		c, err := net.DialTimeout("tcp", a+":2526", 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if _, err := net.DialTimeout("tcp", a+":2527", 5*time.Second); err == nil {
		t.Errorf("%s:2527 still listens after its removal", a)
	}
	if reply, err := s1.cmd("NOOP"); err != nil || reply != "250 one.example\r\n" {
		t.Errorf("session open across two reloads: %q, %v", reply, err)
	}

	// postfix stop ends the sessions, old and new.
	syscall.Kill(in.pid, syscall.SIGTERM)
	for _, s := range []*session{s1, s2} {
		s.c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if line, err := s.r.ReadString('\n'); err == nil {
			t.Errorf("session after postfix stop: %q", line)
		}
	}
}

// A listener that cannot be bound, or a bad service name, stops the
// master at start with Postfix's error.
func TestInetStartErrors(t *testing.T) {
	a := randomLoopback()
	busy, err := net.Listen("tcp4", a+":25")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct{ main, master, want string }{
		{"inet_interfaces = " + a, "smtp inet n - n - - smtpd\n", "postfix/master: fatal: bind " + a + " port 25: Address already in use"},
		{"", "no.such.host.invalid:25 inet n - n - - smtpd\n", "master.cf: line 1: bad hostname or network address: no.such.host.invalid"},
	} {
		dir := instanceDir(t)
		in := &instance{t: t, dir: dir}
		in.write(c.main+"\n", c.master)
		_, err := spawn(t, dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("start with %q: %v, want %q", c.master, err, c.want)
		}
	}
}

func ownerUID(t *testing.T) int {
	cred, err := ownerCred(mustConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return int(cred.Uid)
}

func mustConfig(t *testing.T) *postconf.Config {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("mail_owner = postfix\n"), 0o644)
	cfg, err := postconf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The addresses an inet service listens on, from its name, inet_interfaces
// and inet_protocols, and the errors of Postfix's master for bad ones.
func TestServiceSockets(t *testing.T) {
	for _, c := range []struct {
		main, name, typ, private string
		want                     string // names, or the error
	}{
		{"", "smtp", "inet", "n", "inet/0.0.0.0:25 inet/[::]:25"},
		{"inet_protocols = ipv4", "smtp", "inet", "n", "inet/0.0.0.0:25"},
		{"inet_protocols = ipv6", "submission", "inet", "n", "inet/[::]:587"},
		{"inet_interfaces = localhost\ninet_protocols = ipv4", "smtps", "inet", "n", "inet/127.0.0.1:465"},
		{"inet_interfaces = loopback-only", "smtp", "inet", "n", "inet/127.0.0.1:25 inet/[::1]:25"},
		{"inet_interfaces = loopback-only\ninet_protocols = ipv4", "smtp", "inet", "n", "inet/127.0.0.1:25"},
		{"inet_interfaces = 127.0.0.2, 127.0.0.3 ::1", "2525", "inet", "n", "inet/127.0.0.2:2525 inet/127.0.0.3:2525 inet/[::1]:2525"},
		{"me = 127.0.0.4\ninet_interfaces = $me", "smtp", "inet", "n", "inet/127.0.0.4:25"},
		{"inet_interfaces = 127.0.0.2", "127.0.0.9:2525", "inet", "n", "inet/127.0.0.9:2525"},
		{"", "[::1]:2525", "inet", "n", "inet/[::1]:2525"},
		{"", "smtp", "unix", "-", "private/smtp"},
		{"", "relay", "unix", "n", "public/relay"},
		{"", "nosuchservice", "inet", "n", "unknown service: nosuchservice/tcp"},
		{"inet_interfaces = no.such.host.invalid", "smtp", "inet", "n", "config variable inet_interfaces: host not found: no.such.host.invalid"},
		{"", "no.such.host.invalid:25", "inet", "n", "bad hostname or network address: no.such.host.invalid"},
		{"inet_protocols = ipv5", "smtp", "inet", "n", "bad inet_protocols value: ipv5"},
		{"inet_protocols =", "smtp", "inet", "n", "all network protocols are disabled (inet_protocols = )"},
		{"", "x", "fifo", "n", "unsupported service type: fifo"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "main.cf"), []byte(c.main+"\n"), 0o644)
		cfg, err := postconf.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		names, err := serviceSockets(cfg, postconf.Service{Name: c.name, Type: c.typ, Private: c.private})
		got := strings.Join(names, " ")
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%q, service %s %s: got %q, want %q", c.main, c.name, c.typ, got, c.want)
		}
	}
}

// A master.cf service name and inet_interfaces come from the
// administrator: no value makes serviceSockets panic.
func FuzzServiceSockets(f *testing.F) {
	f.Add("smtp", "all", "all")
	f.Add("127.0.0.1:2525", "localhost", "ipv4")
	f.Add("[::1]:25", "loopback-only", "ipv6")
	f.Add(":", "[", "")
	f.Fuzz(func(t *testing.T, name, ifaces, protos string) {
		if strings.ContainsAny(ifaces+protos, "\n$#\\") {
			t.Skip()
		}
		// No resolver queries for made-up names.
		hosts := strings.FieldsFunc(ifaces, listSep)
		if i := strings.LastIndex(name, ":"); i >= 0 {
			hosts = append(hosts, name[:i])
		}
		for _, h := range hosts {
			h = strings.Trim(h, "[]")
			if net.ParseIP(h) == nil && h != "" && h != "*" && h != "all" && h != "loopback-only" {
				t.Skip()
			}
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "main.cf"), []byte("inet_interfaces = "+ifaces+"\ninet_protocols = "+protos+"\n"), 0o644)
		cfg, err := postconf.Load(dir)
		if err != nil {
			return
		}
		serviceSockets(cfg, postconf.Service{Name: name, Type: "inet"})
	})
}

// limitListener: at most limit sessions at a time over all its
// listeners, and a connection already taken from the kernel when it
// closes is still handed out rather than dropped.
func TestLimitListener(t *testing.T) {
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	l := newLimitListener(lns, 1)
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for _, ln := range lns {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first := <-accepted
	select {
	case c := <-accepted:
		t.Fatalf("a second session beyond the limit: %v", c.LocalAddr())
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	second := <-accepted
	if second.LocalAddr().String() == first.LocalAddr().String() {
		t.Fatalf("the same listener twice: %v", second.LocalAddr())
	}
	second.Close()
	// Clients of either listener in turn: a listener nobody uses never
	// keeps the only slot from the other.
	for i := range 10 {
		c, err := net.Dial("tcp4", lns[i%2].Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		select {
		case s := <-accepted:
			s.Close()
		case <-time.After(10 * time.Second):
			t.Fatalf("client %d of listener %d never accepted", i, i%2)
		}
	}
	l.Close()
	for c := range accepted {
		c.Close()
	}

	// A connection is taken from the kernel, then the listener closes:
	// the connection still comes out of Accept.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = newLimitListener([]net.Listener{ln}, 1)
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond)
	l.Close()
	n := 0
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept after Close: %v", err)
			}
			break
		}
		c.Close()
		n++
	}
	if n != 1 {
		t.Errorf("%d connections after close, want 1", n)
	}
}

// A server daemon that dies is restarted on the same listener, and a
// reload still lets the restarted one finish its sessions.
func TestInetServerRestart(t *testing.T) {
	a := randomLoopback()
	in := startInstance(t, "myhostname = one.example\ninet_interfaces = "+a+"\n", "smtp inet n - n - - smtpd\n")
	s, err := dial(a + ":25")
	if err != nil {
		t.Fatal(err)
	}
	var host string
	var pid int
	fmt.Sscanf(s.banner, "220 %s %d", &host, &pid)
	s.c.Close()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var s1 *session
	waitFor(t, "a new smtpd", func() bool {
		s1, err = dial(a + ":25")
		if err != nil {
			t.Fatalf("connect while smtpd restarts: %v", err)
		}
		if strings.HasSuffix(s1.banner, fmt.Sprintf(" %d\r\n", pid)) {
			s1.c.Close()
			return false
		}
		return true
	})
	defer s1.c.Close()
	in.reload("myhostname = two.example\ninet_interfaces = "+a+"\n", "smtp inet n - n - - smtpd\n")
	waitFor(t, "new sessions with the new myhostname", func() bool {
		s, err := dial(a + ":25")
		if err != nil {
			t.Fatalf("new session during reload: %v", err)
		}
		s.c.Close()
		return strings.HasPrefix(s.banner, "220 two.example ")
	})
	if reply, err := s1.cmd("NOOP"); err != nil || reply != "250 one.example\r\n" {
		t.Errorf("session of the restarted smtpd across a reload: %q, %v", reply, err)
	}
}

// A server entry of a type the master does not run yet (postscreen's
// smtpd pass) is left alone rather than stop the mail system.
func TestServerPassLeftAlone(t *testing.T) {
	a := randomLoopback()
	startInstance(t, "inet_interfaces = "+a+"\n", "smtpd pass - - n - - smtpd\n"+a+":2525 inet n - n - - smtpd\n")
	if s, err := dial(a + ":2525"); err != nil {
		t.Errorf("the inet service beside a pass one: %v", err)
	} else {
		s.c.Close()
	}
}

// A server's unix service listens below queue_directory: private ones
// for mail_owner only, public ones for all.
func TestServerUnixService(t *testing.T) {
	in := startInstance(t, "myhostname = one.example\n", "priv unix - - n - - smtpd\npub unix n - n - - smtpd\n")
	owner := ownerUID(t)
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{"private/priv", 0o600}, {"public/pub", 0o666}} {
		path := filepath.Join(in.dir, "spool", c.path)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if c.mode == 0o600 && (fi.Mode().Perm() != 0o600 || int(st.Uid) != owner) {
			t.Errorf("%s: mode %v uid %d", c.path, fi.Mode(), st.Uid)
		}
		conn, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		banner, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.HasPrefix(banner, "220 one.example ") {
			t.Errorf("%s: %q, %v", c.path, banner, err)
		}
	}
}

// children are the pids of process pid's children.
func children(t *testing.T, pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// As Postfix's master, the master starts a server only when a client
// connects; after max_idle without a client it exits, quietly, and the
// next client starts another.
func TestServerOnDemand(t *testing.T) {
	a := randomLoopback()
	in := startInstance(t, "max_idle = 1s\n", a+":2525 inet n - n - - smtpd\n")
	if kids := children(t, in.pid); len(kids) != 0 {
		t.Fatalf("processes %v before any client", kids)
	}
	s, err := dial(a + ":2525")
	if err != nil {
		t.Fatal(err)
	}
	var host string
	var pid int
	fmt.Sscanf(s.banner, "220 %s %d", &host, &pid)
	// A session longer than max_idle keeps it.
	time.Sleep(1500 * time.Millisecond)
	if reply, err := s.cmd("NOOP"); err != nil || !strings.HasPrefix(reply, "250 ") {
		t.Fatalf("session after max_idle: %q, %v", reply, err)
	}
	s.cmd("QUIT")
	s.c.Close()
	waitFor(t, "the idle server to exit", func() bool { return !Alive(pid) })
	if kids := children(t, in.pid); len(kids) != 0 {
		t.Errorf("processes %v once idle", kids)
	}
	s, err = dial(a + ":2525")
	if err != nil {
		t.Fatalf("a client after the idle exit: %v", err)
	}
	s.c.Close()
	if strings.HasSuffix(s.banner, fmt.Sprintf(" %d\r\n", pid)) {
		t.Errorf("banner %q from the process that exited", s.banner)
	}
	b, _ := os.ReadFile(filepath.Join(in.dir, "maillog"))
	if strings.Contains(string(b), "exit status") {
		t.Errorf("an idle exit is logged as a failure:\n%s", b)
	}
}
