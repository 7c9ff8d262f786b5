package dovecot

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/handoff"
	"postdove/pkg/imap"
)

// The proxy tests run two masters: the front end in this process (the
// instance of dovecot_test.go, on 127.0.0.1, whose passwd-file is
// rewritten with the proxy fields) and the backend as a second process
// (this test binary run as dovecot -F -c FILE) on 127.0.0.2 with its own
// base_dir, config and users.

// backendEnv makes this test binary a dovecot master: the backend.
const backendEnv = "POSTDOVE_TEST_PROXY_BACKEND"

// backendMark is in the homes of the backend's users: their mail
// processes serve IMAP with pkg/imap, POP3 with backendEcho.
const backendMark = "proxy-backend"

func init() {
	if os.Getenv(backendEnv) != "" {
		os.Exit(Main(os.Args, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 2 && os.Args[1] == mailArg && strings.Contains(os.Getenv("HOME"), backendMark) {
		RegisterMailServer("imap", imap.NewServer())
		RegisterMailServer("pop3", backendEcho{})
		os.Exit(Main(os.Args, os.Stdout, os.Stderr))
	}
}

// backendEcho is the backend's mail side: it answers the login as
// Dovecot's imap and pop3 do, with the process's uid and pid, and then
// echoes lines.
type backendEcho struct{}

func (backendEcho) Serve(conn net.Conn, info *handoff.Info, logf func(string, ...any)) {
	defer conn.Close()
	who := fmt.Sprintf("backend uid=%d pid=%d", os.Getuid(), os.Getpid())
	if info.Protocol == "imap" {
		fmt.Fprintf(conn, "%s OK [CAPABILITY IMAP4rev1 IDLE] Logged in (%s)\r\n", info.Tag, who)
	} else {
		fmt.Fprintf(conn, "+OK Logged in (%s).\r\n", who)
	}
	logf("Disconnected: Logged out in=0 out=0")
	io.Copy(conn, conn)
}

// backend is the second master.
type backendInst struct {
	dir, log   string
	imap, pop3 int
}

func startBackend(t *testing.T) *backendInst {
	t.Helper()
	dir := filepath.Join(t.TempDir(), backendMark)
	os.MkdirAll(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	b := &backendInst{dir: dir, log: filepath.Join(dir, "dovecot.log"),
		imap: oracle.FreePort(t, "127.0.0.2"), pop3: oracle.FreePort(t, "127.0.0.2")}
	os.Mkdir(filepath.Join(dir, "bob"), 0o700)
	os.Chown(filepath.Join(dir, "bob"), 54322, 54323)
	os.WriteFile(filepath.Join(dir, "users"), []byte("bob:{PLAIN}bpass:54322:54323::"+dir+"/bob\n"), 0o600)
	conf := fmt.Sprintf(`protocols = imap pop3
listen = 127.0.0.2
login_trusted_networks = 127.0.0.0/8
base_dir = %[1]s/run
log_path = %[2]s
default_login_user = nobody
default_internal_user = nobody
ssl = no
mail_location = maildir:~/Maildir
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = passwd-file
  args = %[1]s/users
}
service imap-login {
  inet_listener imap {
    port = %[3]d
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %[4]d
  }
  inet_listener pop3s {
    port = 0
  }
}
`, dir, b.log, b.imap, b.pop3)
	path := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	exe, _ := executable()
	cmd := exec.Command(exe, "-F", "-c", path)
	cmd.Args[0] = "dovecot"
	cmd.Env = append(os.Environ(), backendEnv+"=1")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() || strings.Contains(stderr.String(), "DATA RACE") {
			log, _ := os.ReadFile(b.log)
			t.Logf("backend output:\n%s\nbackend log:\n%s", stderr.String(), log)
		}
	})
	for end := time.Now().Add(10 * time.Second); Running(filepath.Join(dir, "run", "master.pid")) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the backend did not start: %s", stderr.String())
		}
	}
	return b
}

// proxyFront is the front end: the instance of dovecot_test.go with a
// passwd-file that sends bob to the backend, keeps alice here, sends
// carol to this very host with proxy_maybe, dave to a dead backend, and
// eve (any password here) to the backend as bob.
func proxyFront(t *testing.T, b *backendInst, extra string) (*instance, int) {
	t.Helper()
	in := start(t, extra)
	dead := oracle.FreePort(t, "127.0.0.2")
	users := fmt.Sprintf("alice:{PLAIN}apass:54321:54321::%[1]s/alice\n"+
		"bob:{PLAIN}bpass::::::proxy=y host=127.0.0.2 port=%[2]d\n"+
		"bobpop:{PLAIN}bpass::::::proxy=y host=127.0.0.2 port=%[3]d destuser=bob\n"+
		"carol:{PLAIN}cpass:54324:54324::%[1]s/carol::proxy_maybe=y host=127.0.0.1\n"+
		"dave:{PLAIN}dpass::::::proxy=y host=127.0.0.2 port=%[4]d\n"+
		"eve:::::::proxy=y nopassword=y host=127.0.0.2 port=%[2]d destuser=bob\n",
		in.dir, b.imap, b.pop3, dead)
	if err := os.WriteFile(filepath.Join(in.dir, "users"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	return in, dead
}

var sessionRe = regexp.MustCompile(`session=<[A-Za-z0-9+/]{16}>$`)

func TestProxyIMAP(t *testing.T) {
	b := startBackend(t)
	in, dead := proxyFront(t, b, "auth_verbose = yes\n")

	// bob logs in on the backend (pkg/imap on its Maildir): the tagged OK
	// is the backend's, with its capabilities, and the session is its.
	c := in.dial(in.imap, false)
	c.line()
	io.WriteString(c.c, "a LOGIN bob bpass\r\nb NOOP\r\n")
	got := c.line()
	if !regexp.MustCompile(`^a OK \[CAPABILITY IMAP4rev1 [^]]*\] Logged in$`).MatchString(got) {
		t.Fatalf("bob's login over the proxy: %q", got)
	}
	if got := c.line(); !strings.HasPrefix(got, "b OK ") {
		t.Errorf("pipelined after LOGIN: %q", got)
	}
	c.send("c CREATE Proxied")
	if got := c.line(); !strings.HasPrefix(got, "c OK ") {
		t.Errorf("CREATE over the proxy: %q", got)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "bob", "Maildir", ".Proxied")); err != nil {
		t.Errorf("CREATE over the proxy did not reach the backend's Maildir: %v", err)
	}
	l := in.waitLog("proxy(bob,127.0.0.2:" + fmt.Sprint(b.imap) + "): Started proxying to <127.0.0.2> (")
	if !strings.Contains(l, "imap-login: Info: ") || !strings.Contains(l, " secs): user=<bob>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, secured, session=<") || !sessionRe.MatchString(l) {
		t.Errorf("start line %q", l)
	}
	if strings.Contains(readFile(in.log), "Login: user=<bob>") {
		t.Error("the front end logged a local login for bob")
	}
	if waitFile(t, b.log, "imap-login: Info: Login: user=<bob>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.2, mpid=") == "" {
		t.Errorf("the backend did not log bob in:\n%s", readFile(b.log))
	}
	c.c.Close()
	l = in.waitLog("proxy(bob,127.0.0.2:" + fmt.Sprint(b.imap) + "): Disconnected by client (")
	if !regexp.MustCompile(`Disconnected by client \(\d+s idle, in=\d+, out=\d+\): user=<bob>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, secured, session=<`).MatchString(l) {
		t.Errorf("end line %q", l)
	}

	// alice has no proxy field: her session is served here.
	a := in.dial(in.imap, false)
	a.line()
	a.send("a LOGIN alice apass")
	if uid, _, _ := loggedIn(t, a.line(), "a"); uid != 54321 {
		t.Errorf("alice runs as %d", uid)
	}
	in.waitLog("Login: user=<alice>")

	// carol's proxy_maybe points at this host: she stays here too.
	k := in.dial(in.imap, false)
	k.line()
	k.send("k LOGIN carol cpass")
	if uid, _, _ := loggedIn(t, k.line(), "k"); uid != 54324 {
		t.Errorf("carol runs as %d", uid)
	}
	in.waitLog("Login: user=<carol>")

	// eve: nopassword=y here, the backend checks the password of destuser.
	e := in.dial(in.imap, false)
	e.line()
	e.expect("e LOGIN eve wrong", "e NO [AUTHENTICATIONFAILED] Authentication failed.")
	in.waitLog("proxy(eve,127.0.0.2:" + fmt.Sprint(b.imap) + "): Login failed: [AUTHENTICATIONFAILED] Authentication failed.: user=<eve>")
	e.send("f LOGIN eve bpass")
	if got := e.line(); !strings.HasPrefix(got, "f OK [CAPABILITY IMAP4rev1 ") || !strings.HasSuffix(got, "] Logged in") {
		t.Errorf("eve as bob on the backend: %q", got)
	}

	// dave's backend is down: after the retries, Dovecot's answer, and
	// the client may go on.
	d := in.dial(in.imap, false)
	d.line()
	begin := time.Now()
	d.expect("d LOGIN dave dpass", "d NO [UNAVAILABLE] Account is temporarily unavailable.")
	if time.Since(begin) < 3*time.Second {
		t.Errorf("answered in %v, before login_proxy_max_reconnects retries", time.Since(begin))
	}
	l = in.waitLog(fmt.Sprintf("imap-login: Error: proxy(dave,127.0.0.2:%d): connect(127.0.0.2, %d) failed: Connection refused (after 3 secs, 3 reconnects): user=<dave>, method=PLAIN", dead, dead))
	if !sessionRe.MatchString(l) {
		t.Errorf("%q", l)
	}
	d.expect("n NOOP", "n OK NOOP completed.")
}

func TestProxyPOP3(t *testing.T) {
	b := startBackend(t)
	in, dead := proxyFront(t, b, "login_proxy_max_reconnects = 0\n")

	c := in.dial(in.pop3, false)
	c.expect("", "+OK Dovecot ready.")
	c.expect("USER bobpop", "+OK")
	c.send("PASS bpass")
	got := c.line()
	if !regexp.MustCompile(`^\+OK Logged in \(backend uid=54322 pid=\d+\)\.$`).MatchString(got) {
		t.Fatalf("bobpop's login over the proxy: %q", got)
	}
	c.expect("STAT", "STAT")
	in.waitLog(fmt.Sprintf("pop3-login: Info: proxy(bobpop,127.0.0.2:%d): Started proxying to <127.0.0.2> (", b.pop3))
	if waitFile(t, b.log, "pop3-login: Info: Login: user=<bob>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.2") == "" {
		t.Errorf("the backend did not log bob in:\n%s", readFile(b.log))
	}
	c.c.Close()
	in.waitLog(fmt.Sprintf("proxy(bobpop,127.0.0.2:%d): Disconnected by client (", b.pop3))

	// A wrong password: the backend's refusal reaches the client.
	w := in.dial(in.pop3, false)
	w.line()
	w.expect("USER bobpop", "+OK")
	w.expect("PASS nope", "-ERR [AUTH] Authentication failed.")

	// The backend closes the session: the front end closes the client's.
	s := in.dial(in.pop3, false)
	s.line()
	s.expect("USER bobpop", "+OK")
	s.send("PASS bpass")
	got = s.line()
	pid := 0
	if _, err := fmt.Sscanf(got, "+OK Logged in (backend uid=54322 pid=%d).", &pid); err != nil || pid == 0 {
		t.Fatalf("bobpop over pop3: %q", got)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if _, err := s.r.ReadString('\n'); err == nil {
		t.Error("the client's connection stayed open after the backend's went away")
	}
	in.waitLog("Disconnected by server (")

	d := in.dial(in.pop3, false)
	d.line()
	d.expect("USER dave", "+OK")
	d.expect("PASS dpass", "-ERR [SYS/TEMP] Account is temporarily unavailable.")
	in.waitLog(fmt.Sprintf("pop3-login: Error: proxy(dave,127.0.0.2:%d): connect(127.0.0.2, %d) failed: Connection refused (after 0 secs): user=<dave>", dead, dead))
	d.expect("QUIT", "+OK Logging out")
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitFile waits for a line with substr in the file at path.
func waitFile(t *testing.T, path, substr string) string {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(readFile(path), "\n") {
			if strings.Contains(l, substr) {
				return l
			}
		}
	}
	return ""
}

func TestProxyIMAPLoginReply(t *testing.T) {
	c := &client{}
	for _, tc := range []struct{ caps, text, want string }{
		{"IMAP4rev1 IDLE", "Logged in", "t OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"},
		{"IMAP4rev1", "[CAPABILITY IMAP4rev1 MOVE] Logged in", "t OK [CAPABILITY IMAP4rev1 MOVE] Logged in\r\n"},
		{"IMAP4rev1", "[ALERT] Logged in", "t OK [CAPABILITY IMAP4rev1] Logged in\r\n"},
		{"", "Logged in", "t OK Logged in\r\n"},
	} {
		if got := c.imapLoginReply("t", tc.caps, tc.text); got != tc.want {
			t.Errorf("caps %q, %q: %q; want %q", tc.caps, tc.text, got, tc.want)
		}
	}
	if got := imapString(`a"b\c`); got != `"a\"b\\c"` {
		t.Errorf("quoted: %s", got)
	}
	if got := imapString("pä"); got != "{3}\r\npä" {
		t.Errorf("literal: %q", got)
	}
}

// FuzzProxyBackendLines feeds the lines a backend may send through what
// the proxy parses of them: the client's answer is always one line.
func FuzzProxyBackendLines(f *testing.F) {
	for _, s := range []string{"[CAPABILITY IMAP4rev1 IDLE] Logged in", "[ALERT", "[CAPABILITY ", "]", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.ContainsAny(text, "\r\n") {
			return
		}
		caps, _ := capsOf(text)
		reply := (&client{}).imapLoginReply("t", caps, text)
		if !strings.HasPrefix(reply, "t OK ") || strings.Count(reply, "\n") != 1 {
			t.Errorf("%q -> %q", text, reply)
		}
		hasWord(text, "ID")
	})
}
