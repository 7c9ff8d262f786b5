package dovecot

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/doveconf"
	"postdove/pkg/handoff"
)

// echoServer is a test-only mail side: it reports the process's uid, gid
// and pid, then Input, then echoes lines.
type echoServer struct{}

func (echoServer) Serve(conn net.Conn, info *handoff.Info, logf func(string, ...any)) {
	defer conn.Close()
	fmt.Fprintf(conn, "%s OK uid=%d gid=%d pid=%d tls=%v\r\n", info.Tag, os.Getuid(), os.Getgid(), os.Getpid(), info.TLS)
	fmt.Fprintf(conn, "input=%q\r\n", info.Input)
	logf("Disconnected: Logged out in=0 out=0")
	// A small buffer, as a mail server's idle session would hold.
	io.CopyBuffer(struct{ io.Writer }{conn}, struct{ io.Reader }{conn}, make([]byte, 512))
}

func TestMain(m *testing.M) {
	RegisterMailServer("imap", echoServer{})
	RegisterMailServer("pop3", echoServer{})
	if len(os.Args) > 1 && os.Args[1] == mailArg {
		os.Exit(Main(os.Args, os.Stdout, os.Stderr))
	}
	// The mail processes run this binary as the users: a copy outside
	// go test's private build folder.
	dir, err := os.MkdirTemp("/var/tmp", "dovecot-test-")
	if err == nil {
		os.Chmod(dir, 0o755)
		exe, _ := os.Executable()
		if b, err := os.ReadFile(exe); err == nil && os.WriteFile(filepath.Join(dir, "dovecot.test"), b, 0o755) == nil {
			executable = func() (string, error) { return filepath.Join(dir, "dovecot.test"), nil }
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is a master run in this process on free ports.
type instance struct {
	t                 testing.TB
	dir, log          string
	imap, imaps, pop3 int
	done              chan int
}

func start(t testing.TB, extra string) *instance {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	cert, key := oracle.SelfSignedCert(t, "localhost")
	in := &instance{t: t, dir: dir, log: filepath.Join(dir, "dovecot.log"), done: make(chan int, 1),
		imap: oracle.FreePort(t, "127.0.0.1"), imaps: oracle.FreePort(t, "127.0.0.1"), pop3: oracle.FreePort(t, "127.0.0.1")}
	users := "alice:{PLAIN}apass:54321:54321::" + dir + "/alice\n" +
		"bob:{PLAIN}bpass:54322:54323::" + dir + "/bob\n" +
		"rooty:{PLAIN}rpass:0:0::/root\n"
	os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o600)
	conf := fmt.Sprintf(`protocols = imap pop3
listen = 127.0.0.1
base_dir = %[1]s/run
log_path = %[2]s
default_login_user = nobody
default_internal_user = nobody
ssl_cert = <%[3]s
ssl_key = <%[4]s
auth_failure_delay = 1 secs
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = passwd-file
  args = %[1]s/users
}
default_idle_kill = 2 secs
service imap-login {
  inet_listener imap {
    port = %[5]d
  }
  inet_listener imaps {
    port = %[6]d
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %[7]d
  }
  inet_listener pop3s {
    port = 0
  }
}
%[8]s`, dir, in.log, cert, key, in.imap, in.imaps, in.pop3, extra)
	path := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	st, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- runMaster(path, st, nil, os.Stderr) }()
	t.Cleanup(func() {
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {
		case <-in.done:
		case <-time.After(10 * time.Second):
			t.Error("the master did not stop")
		}
		if t.Failed() {
			b, _ := os.ReadFile(in.log)
			t.Logf("log:\n%s", b)
		}
	})
	for end := time.Now().Add(5 * time.Second); Running(filepath.Join(dir, "run", "master.pid")) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the master did not start")
		}
	}
	return in
}

type conn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (in *instance) dial(port int, useTLS bool) *conn {
	in.t.Helper()
	if useTLS {
		return in.connect(port, "127.0.0.1", &tls.Config{InsecureSkipVerify: true})
	}
	return in.connect(port, "127.0.0.1", nil)
}

// dialFrom connects to port from the address from.
func (in *instance) dialFrom(from string, port int) *conn {
	in.t.Helper()
	return in.connect(port, from, nil)
}

func (in *instance) connect(port int, from string, tc *tls.Config) *conn {
	in.t.Helper()
	var c net.Conn
	var err error
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if tc != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tc)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &conn{t: in.t, c: c, r: bufio.NewReader(c)}
}

func (c *conn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *conn) send(s string) { io.WriteString(c.c, s+"\r\n") }

// expect sends s and checks the next line (and the lines before it) .
func (c *conn) expect(s string, want ...string) {
	c.t.Helper()
	if s != "" {
		c.send(s)
	}
	for _, w := range want {
		if got := c.line(); got != w {
			c.t.Errorf("after %q: got %q, want %q", s, got, w)
		}
	}
}

func (in *instance) waitLog(substr string) string {
	in.t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(in.log)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, substr) {
				return l
			}
		}
	}
	b, _ := os.ReadFile(in.log)
	in.t.Fatalf("no log line with %q in:\n%s", substr, b)
	return ""
}

const caps = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+"

// loggedIn parses the echo server's first line: uid, gid, pid.
func loggedIn(t testing.TB, line, tag string) (uid, gid, pid int) {
	t.Helper()
	var tls bool
	if _, err := fmt.Sscanf(line, tag+" OK uid=%d gid=%d pid=%d tls=%v", &uid, &gid, &pid, &tls); err != nil {
		t.Fatalf("login: %q: %v", line, err)
	}
	return
}

func TestIMAPLoginHandoff(t *testing.T) {
	in := start(t, "")
	a := in.dial(in.imap, false)
	a.expect("", "* OK [CAPABILITY "+caps+" STARTTLS AUTH=PLAIN AUTH=LOGIN] Dovecot ready.")
	a.expect("a CAPABILITY", "* CAPABILITY "+caps+" STARTTLS AUTH=PLAIN AUTH=LOGIN", "a OK Pre-login capabilities listed, post-login capabilities have more.")
	a.expect("b NOOP", "b OK NOOP completed.")
	// Input pipelined after LOGIN reaches the mail process first.
	io.WriteString(a.c, "c LOGIN alice {5}\r\n")
	a.expect("", "+ OK")
	io.WriteString(a.c, "apass\r\nd NOOP\r\n")
	uid, gid, pid := loggedIn(t, a.line(), "c")
	if uid != 54321 || gid != 54321 {
		t.Errorf("alice's process runs as %d:%d", uid, gid)
	}
	if got := a.line(); got != `input="d NOOP\r\n"` {
		t.Errorf("input: %q", got)
	}
	a.expect("echo", "echo")
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if !strings.Contains(string(status), "Uid:\t54321\t54321\t54321\t54321") || !strings.Contains(string(status), "Groups:\t54321") {
		t.Errorf("/proc/%d/status:\n%s", pid, status)
	}
	l := in.waitLog("imap-login: Info: Login: user=<alice>")
	if !strings.Contains(l, fmt.Sprintf("method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=%d, secured, session=<", pid)) {
		t.Errorf("login line %q", l)
	}
	in.waitLog(fmt.Sprintf("imap(alice)<%d><", pid))

	// alice's second connection goes to the same process; bob gets his own.
	a2 := in.dial(in.imap, false)
	a2.line()
	a2.send("x AUTHENTICATE PLAIN AGFsaWNlAGFwYXNz")
	if _, _, pid2 := loggedIn(t, a2.line(), "x"); pid2 != pid {
		t.Errorf("alice's second session in process %d, first in %d", pid2, pid)
	}
	b := in.dial(in.imap, false)
	b.line()
	b.send("y AUTHENTICATE LOGIN")
	b.expect("", "+ VXNlcm5hbWU6")
	b.expect("Ym9i", "+ UGFzc3dvcmQ6")
	b.send("YnBhc3M=")
	buid, bgid, bpid := loggedIn(t, b.line(), "y")
	if bpid == pid || buid != 54322 || bgid != 54323 {
		t.Errorf("bob: uid %d gid %d pid %d (alice's pid %d)", buid, bgid, bpid, pid)
	}

	// The process exits idle_kill after its last session.
	a.c.Close()
	a2.c.Close()
	for end := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("alice's mail process %d still runs", pid)
		}
	}
}

func TestIMAPFailuresAndTLS(t *testing.T) {
	in := start(t, "")
	c := in.dial(in.imap, false)
	c.line()
	begin := time.Now()
	c.expect("a LOGIN alice wrong", "a NO [AUTHENTICATIONFAILED] Authentication failed.")
	if time.Since(begin) < time.Second {
		t.Errorf("answered in %v, before auth_failure_delay", time.Since(begin))
	}
	c.expect("b FOO", "b BAD Error in IMAP command received by server.")
	c.expect("c LOGIN rooty rpass", "* BYE Internal error occurred. Refer to server log for more information.")
	in.waitLog("Mail access for users with UID 0 not permitted")
	l := in.waitLog("imap-login: Info: Disconnected: Connection closed (internal failure, 1 successful auths): ")
	if !strings.Contains(l, "user=<rooty>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, secured, session=<") {
		t.Errorf("%q", l)
	}
	n := in.dial(in.imap, false)
	n.line()
	n.expect("z LOGOUT", "* BYE Logging out", "z OK Logout completed.")
	in.waitLog("imap-login: Info: Disconnected: Aborted login by logging out (no auth attempts in 0 secs): user=<>, rip=127.0.0.1")

	// imaps: the master relays the clear text.
	s := in.dial(in.imaps, true)
	s.expect("", "* OK [CAPABILITY "+caps+" AUTH=PLAIN AUTH=LOGIN] Dovecot ready.")
	s.expect("t STARTTLS", "t BAD TLS is already active.")
	s.send("l LOGIN alice apass")
	if got := s.line(); !strings.HasSuffix(got, "tls=true") {
		t.Errorf("over imaps: %q", got)
	}
	s.line()
	s.expect("through tls", "through tls")
	in.waitLog("mpid=")
	l = in.waitLog(", TLS, session=<")
	if !strings.Contains(l, "Login: user=<alice>") {
		t.Errorf("%q", l)
	}

	// STARTTLS, then LOGIN inside TLS.
	p := in.dial(in.imap, false)
	p.line()
	p.expect("s STARTTLS", "s OK Begin TLS negotiation now.")
	tc := tls.Client(p.c, &tls.Config{InsecureSkipVerify: true})
	p.c, p.r = tc, bufio.NewReader(tc)
	p.expect("c CAPABILITY", "* CAPABILITY "+caps+" AUTH=PLAIN AUTH=LOGIN", "c OK Pre-login capabilities listed, post-login capabilities have more.")
	p.send("l LOGIN bob bpass")
	if got := p.line(); !strings.HasPrefix(got, "l OK uid=54322 ") || !strings.HasSuffix(got, "tls=true") {
		t.Errorf("after STARTTLS: %q", got)
	}
	p.line()
	p.expect("hello", "hello")
}

func TestPlaintextDisallowed(t *testing.T) {
	// From 127.0.0.1 to 127.0.0.1, the server's own address: secured.
	in := start(t, "disable_plaintext_auth = yes\nssl = required\n")
	c := in.dial(in.pop3, false)
	c.expect("", "+OK Dovecot ready.")
	c.expect("CAPA", "+OK", "CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS", "USER", "SASL PLAIN LOGIN", ".")
	c.expect("USER bob", "+OK")
	c.expect("PASS bpass")
	uid, _, _ := loggedIn(t, c.line(), "")
	if uid != 54322 {
		t.Errorf("pop3 bob runs as %d", uid)
	}
	d := in.dial(in.pop3, false)
	d.line()
	d.expect("USER bob", "+OK")
	d.expect("PASS nope", "-ERR [AUTH] Authentication failed.")
	d.expect("QUIT", "+OK Logging out")
	in.waitLog("pop3-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in ")

	// From 127.0.0.2: loopback, but not the server's address, so not
	// secured (as in Dovecot).
	e := in.dialFrom("127.0.0.2", in.pop3)
	e.line()
	e.expect("CAPA", "+OK", "CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS", "SASL", ".")
	e.expect("USER bob", "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
	e.expect("AUTH PLAIN AGJvYgBicGFzcw==", "-ERR [AUTH] Authentication not allowed until SSL/TLS is enabled.")
	e.expect("QUIT", "+OK Logging out")
	in.waitLog("pop3-login: Info: Disconnected: Aborted login by logging out (auth failed, 2 attempts in 0 secs): user=<bob>, method=PLAIN, rip=127.0.0.2, lip=127.0.0.1, session=<")
	f := in.dialFrom("127.0.0.2", in.imap)
	f.expect("", "* OK [CAPABILITY "+caps+" STARTTLS LOGINDISABLED] Dovecot ready.")
}

// TestSettingsShared: connections the same filters apply to share one
// copy of the settings, unless a remote filter makes them differ.
func TestSettingsShared(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dovecot.conf")
	for _, c := range []struct {
		conf   string
		shared bool
	}{
		{"ssl = no\nprotocol imap {\n  login_greeting = IMAP here.\n}\n", true},
		{"ssl = no\nremote 127.0.0.2 {\n  login_greeting = Hello 2.\n}\n", false},
	} {
		os.WriteFile(path, []byte(c.conf), 0o644)
		st, err := load(path)
		if err != nil {
			t.Fatal(err)
		}
		a := st.settingsFor(doveconfMatch("imap", "127.0.0.1"))
		b := st.settingsFor(doveconfMatch("imap", "127.0.0.2"))
		if p := st.settingsFor(doveconfMatch("pop3", "127.0.0.1")); p == a || p.Get("login_greeting") != "Dovecot ready." {
			t.Errorf("%q: pop3 shares imap's settings, or has greeting %q", c.conf, p.Get("login_greeting"))
		}
		if (a == b) != c.shared {
			t.Errorf("%q: shared %v, want %v", c.conf, a == b, c.shared)
		}
		want := map[bool]string{true: "IMAP here.", false: "Hello 2."}[c.shared]
		if got := b.Get("login_greeting"); got != want {
			t.Errorf("%q: greeting from 127.0.0.2 %q, want %q", c.conf, got, want)
		}
	}
}

func doveconfMatch(proto, remote string) doveconf.Match {
	return doveconf.Match{Protocol: proto, Local: "127.0.0.1", Remote: remote}
}

// BenchmarkIdleLoggedIn: the memory 1,000 idle logged-in IMAP sessions of
// one user cost that user's mail process (VmRSS before and after, per
// session), with the test's echo server as the mail side: the floor
// under what pkg/imap's sessions will add. The plain connections went
// over with SCM_RIGHTS, so the master keeps nothing for them.
func BenchmarkIdleLoggedIn(b *testing.B) {
	const n = 1000
	in := start(b, "")
	first := in.dial(in.imap, false)
	first.line()
	first.send("a LOGIN alice apass")
	_, _, pid := loggedIn(b, first.line(), "a")
	first.line()
	status := fmt.Sprintf("/proc/%d/status", pid)
	rss := func() int {
		s, _ := os.ReadFile(status)
		for _, l := range strings.Split(string(s), "\n") {
			if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.Fields(rest)[0])
				return kb
			}
		}
		return 0
	}
	for i := 0; i < b.N; i++ {
		before := rss()
		for j := 0; j < n; j++ {
			c := in.dial(in.imap, false)
			c.line()
			c.send("a LOGIN alice apass")
			if _, _, p := loggedIn(b, c.line(), "a"); p != pid {
				b.Fatalf("session %d went to process %d, not %d", j, p, pid)
			}
			c.line()
		}
		time.Sleep(time.Second)
		b.ReportMetric(float64(rss()-before)/n, "KiB-RSS/conn")
	}
}

// TestInactivity: a client silent for loginIdle is told so and let go,
// and the log says why, in Dovecot's words.
func TestInactivity(t *testing.T) {
	defer func(d time.Duration) { loginIdle = d }(loginIdle)
	loginIdle = 300 * time.Millisecond
	in := start(t, "")
	c := in.dial(in.imap, false)
	c.line()
	c.expect("", "* BYE Disconnected for inactivity.")
	p := in.dial(in.pop3, false)
	p.line()
	p.expect("", "-ERR Disconnected for inactivity.")
	in.waitLog("imap-login: Info: Disconnected: Inactivity (no auth attempts in 0 secs): user=<>, rip=127.0.0.1")
	in.waitLog("pop3-login: Info: Disconnected: Inactivity (no auth attempts in 0 secs): user=<>, rip=127.0.0.1")
}

func TestServicePrefix(t *testing.T) {
	for _, c := range []struct{ text, prefix, rest string }{
		{"Connect from local", "lmtp(1): ", "Connect from local"},
		{"lmtp(1): Connect from local", "lmtp(1): ", "Connect from local"},
		{"lmtp(alice)<1><s>: msgid=<a: b>: saved mail to INBOX", "lmtp(alice)<1><s>: ", "msgid=<a: b>: saved mail to INBOX"},
		{"Error: lmtp(x) broke", "lmtp(1): ", "Error: lmtp(x) broke"},
	} {
		p, r := servicePrefix("lmtp", "lmtp(1): ", c.text)
		if p != c.prefix || r != c.rest {
			t.Errorf("servicePrefix(%q) = %q, %q; want %q, %q", c.text, p, r, c.prefix, c.rest)
		}
	}
}
