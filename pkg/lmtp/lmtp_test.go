package lmtp

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postdove/pkg/doveconf"
)

// systemUser adds a real user with a home under /home (useradd), removed
// with its home when the test ends.
func systemUser(t *testing.T) *user.User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (useradd, the deliveries' setuid)")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd is needed")
	}
	name := fmt.Sprintf("pdlmtp%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "-m", "-s", "/bin/false", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", "-r", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// server runs Serve on a unix socket with conf and collects the log.
type server struct {
	Socket string
	mu     sync.Mutex
	log    []string
}

func startServer(t *testing.T, conf string) *server {
	t.Helper()
	cfg, err := doveconf.Parse("dovecot.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{Socket: filepath.Join(t.TempDir(), "dovecot-lmtp")}
	ln, err := net.Listen("unix", s.Socket)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- Serve(ln, cfg, func(format string, args ...any) {
			s.mu.Lock()
			s.log = append(s.log, fmt.Sprintf(format, args...))
			s.mu.Unlock()
		})
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return s
}

// lines waits until the log has a line matching re and returns it all.
func (s *server) lines(t *testing.T, re string) string {
	t.Helper()
	m := regexp.MustCompile(re)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		log := strings.Join(s.log, "\n")
		s.mu.Unlock()
		if m.MatchString(log) || time.Now().After(end) {
			return log
		}
	}
}

// testConf has system users, named user@anything (Postfix's
// mailbox_transport sends user@myhostname), as Dovecot's documentation
// tells to set it up for LMTP.
const testConf = "protocols = lmtp\nmail_location = maildir:~/Maildir\nfirst_valid_uid = 500\nauth_username_format = %Ln\n" +
	"userdb {\n  driver = passwd\n}\npassdb {\n  driver = pam\n}\n"

// TestDeliverToSystemUser: go-smtp's LMTP client sends one message to a
// real user (twice named, once with a +detail), an unknown one and the
// user again in a second transaction: one reply per RCPT after DATA as
// Dovecot's, the copies in the user's ~/Maildir/new owned by the user,
// with Dovecot's trace headers, and Dovecot's log lines.
func TestDeliverToSystemUser(t *testing.T) {
	u := systemUser(t)
	s := startServer(t, testConf)
	c := dial(t, s.Socket)
	defer c.Close()
	c.expect(t, "", 1)
	c.expect(t, "LHLO client.example", 1)
	c.expect(t, "MAIL FROM:<sender@example.org>", 1)
	addr := u.Username + "@example.test"
	c.expect(t, "RCPT TO:<"+addr+">", 1)
	unknown := "nosuchuser" + u.Uid + "@example.test"
	if got, want := c.expect(t, "RCPT TO:<"+unknown+">", 1), fmt.Sprintf("550 5.1.1 <%s> User doesn't exist: %s", unknown, unknown); got != want {
		t.Errorf("RCPT %s: %q, want %q", unknown, got, want)
	}
	c.expect(t, "RCPT TO:<"+u.Username+"+box@example.test>", 1)
	c.expect(t, "RCPT TO:<"+addr+">", 1)
	c.expect(t, "DATA", 1)
	replies := []string{c.expect(t, "Subject: first\r\nMessage-ID: <m1@example.org>\r\n\r\nbody\r\n..dot\r\n.", 3)}
	// A second transaction, one recipient.
	c.expect(t, "MAIL FROM:<>", 1)
	c.expect(t, "RCPT TO:<"+addr+">", 1)
	c.expect(t, "DATA", 1)
	replies = append(replies, c.expect(t, "Subject: second\r\n\r\nbody\r\n.", 1))
	c.expect(t, "QUIT", 1)
	id := `[\w+/]{22}`
	a := regexp.QuoteMeta(addr)
	want := regexp.MustCompile(`^250 2\.0\.0 <` + a + `> (` + id + `) Saved\n` +
		`250 2\.0\.0 <` + u.Username + `\+box@example\.test> (` + id + `):R3 Saved\n` +
		`250 2\.0\.0 <` + a + `> (` + id + `) Saved\n` +
		`250 2\.0\.0 <` + a + `> (` + id + `):T2 Saved$`)
	got := strings.Join(replies, "\n")
	m := want.FindStringSubmatch(got)
	if m == nil || m[1] != m[2] || m[1] != m[3] || m[1] != m[4] {
		t.Fatalf("replies:\n%s", got)
	}
	sess := m[1]
	log := s.lines(t, `Disconnect from local`)
	for _, l := range []string{
		fmt.Sprintf("lmtp(%d): Connect from local", os.Getpid()),
		fmt.Sprintf("lmtp(%s)<%d><%s>: msgid=<m1@example.org>: saved mail to INBOX", u.Username, os.Getpid(), sess),
		fmt.Sprintf("lmtp(%s)<%d><%s:R3>: msgid=<m1@example.org>: saved mail to INBOX", u.Username, os.Getpid(), sess),
		fmt.Sprintf("lmtp(%s)<%d><%s:T2>: msgid=unspecified: saved mail to INBOX", u.Username, os.Getpid(), sess),
		fmt.Sprintf("lmtp(%d): Disconnect from local: Logged out (state=READY)", os.Getpid()),
	} {
		if !strings.Contains(log, l) {
			t.Errorf("log lacks %q:\n%s", l, log)
		}
	}
	newDir := filepath.Join(u.HomeDir, "Maildir", "new")
	ents, err := os.ReadDir(newDir)
	if err != nil || len(ents) != 3 {
		// One copy for the address given twice, one for +box, one more.
		t.Fatalf("%s: %v %v", newDir, ents, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	var bodies []string
	for _, e := range ents {
		fi, _ := os.Stat(filepath.Join(newDir, e.Name()))
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: owner %d mode %v, want %d 0600", e.Name(), st.Uid, fi.Mode(), uid)
		}
		b, _ := os.ReadFile(filepath.Join(newDir, e.Name()))
		bodies = append(bodies, string(b))
	}
	all := strings.Join(bodies, "\n--\n")
	date := `\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}`
	for _, re := range []string{
		// Two recipients: no Delivered-To, no "for".
		`(?m)^Return-Path: <sender@example.org>\nReceived: from client.example\n\tby \S+ with LMTP\n\tid ` + regexp.QuoteMeta(sess) + `\n\t\(envelope-from <sender@example.org>\); ` + date + `\nSubject: first\nMessage-ID: <m1@example.org>\n\nbody\n.dot\n$`,
		`(?m)^Return-Path: <>\nDelivered-To: ` + a + `\nReceived: from client.example\n\tby \S+ with LMTP\n\tid ` + regexp.QuoteMeta(sess) + `:T2\n\t\(envelope-from <>\)\n\tfor <` + a + `>; ` + date + `\nSubject: second\n`,
	} {
		if !regexp.MustCompile(re).MatchString(all) {
			t.Errorf("no message matches %s:\n%s", re, all)
		}
	}
}

// TestConnectionClosed: a client that goes away without QUIT is logged
// as Dovecot logs it, with the state it was in.
func TestConnectionClosed(t *testing.T) {
	s := startServer(t, testConf)
	for _, c := range []struct{ send, state string }{
		{"", "GREETING"},
		{"LHLO x\r\n", "READY"},
		{"LHLO x\r\nMAIL FROM:<a@b>\r\n", "MAIL FROM"},
	} {
		conn, err := net.Dial("unix", s.Socket)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(conn, c.send)
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		conn.Close()
		want := fmt.Sprintf("lmtp(%d): Disconnect from local: Connection closed (state=%s)", os.Getpid(), c.state)
		if log := s.lines(t, regexp.QuoteMeta(want)); !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// client is a raw LMTP client, so that the test sees every reply line.
type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, socket string) *client {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{c, bufio.NewReader(c)}
}

// expect sends cmd (nothing when empty) and reads n replies, each to its
// last line; it returns them joined by newlines.
func (c *client) expect(t *testing.T, cmd string, n int) string {
	t.Helper()
	if cmd != "" {
		fmt.Fprintf(c, "%s\r\n", cmd)
	}
	var out []string
	for len(out) < n {
		l, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v after %q", cmd, err, out)
		}
		if l = strings.TrimRight(l, "\r\n"); len(l) < 4 || l[3] != '-' {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
