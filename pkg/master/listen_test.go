package master

import (
	"bufio"
	"context"
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
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // mail_owner reaches the queue
	}
	in := &instance{t: t, dir: dir}
	in.write(mainCF, masterCF)
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
		t.Fatalf("start: %v: %s", err, out)
	}
	pid, err := strconv.Atoi(string(out))
	if err != nil {
		t.Fatalf("start: %q", out)
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
	in := startInstance(t, "myhostname = one.example\ninet_interfaces = "+a+"\n", smtp)

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

	// Removed from master.cf, the service stops listening.
	in.reload("myhostname = two.example\ninet_interfaces = "+b+"\n", smtp)
	waitFor(t, a+":2526 to stop listening", func() bool {
		c, err := net.DialTimeout("tcp", a+":2526", 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if reply, err := s1.cmd("QUIT"); err != nil || reply != "221 bye\r\n" {
		t.Errorf("session open across two reloads: %q, %v", reply, err)
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
