package imap

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"postdove/pkg/doveconf"
	"postdove/pkg/handoff"
	"postdove/pkg/maildir"
)

// stockNamespaces are the namespaces of the stock etc/dovecot config.
func stockNamespaces(t testing.TB) []doveconf.Namespace {
	t.Helper()
	cfg, err := doveconf.Load("../../etc/dovecot/dovecot.conf")
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Global().Namespaces()
}

// logBuf collects the log lines Serve writes.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logBuf) wait(t testing.TB, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, s := range l.lines {
			if strings.HasPrefix(s, prefix) {
				l.mu.Unlock()
				return s
			}
		}
		l.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no log line %q in %q", prefix, l.lines)
	return ""
}

// rig is one user's IMAP service as the login side would run it: it
// greets like Dovecot's imap-login, takes the client's LOGIN line and
// hands the connection to one Server's Serve.
type rig struct {
	t     testing.TB
	home  string
	srv   *Server
	ln    net.Listener
	log   *logBuf
	store *maildir.Store
	mu    sync.Mutex
	infos []*handoff.Info
}

func newRig(t testing.TB) *rig {
	t.Helper()
	home := tempHome(t)
	r := &rig{t: t, home: home, srv: newServer(), log: &logBuf{},
		store: maildir.OpenStore(filepath.Join(home, "Maildir"), maildir.Options{UID: -1, GID: -1})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.ln = ln
	nss := stockNamespaces(t)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.login(c, nss)
			}()
		}
	}()
	return r
}

// login plays imap-login: greeting, CAPABILITY answers, then LOGIN.
func (r *rig) login(c net.Conn, nss []doveconf.Namespace) {
	fmt.Fprintf(c, "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return
		}
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[1], "CAPABILITY") {
			fmt.Fprintf(c, "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN\r\n%s OK Pre-login capabilities listed, post-login capabilities have more.\r\n", f[0])
			continue
		}
		if len(f) < 4 || !strings.EqualFold(f[1], "LOGIN") {
			fmt.Fprintf(c, "%s BAD Error in IMAP command received by server.\r\n", f[0])
			continue
		}
		input, _ := br.Peek(br.Buffered())
		info := &handoff.Info{Protocol: "imap", User: strings.Trim(f[2], `"`), UID: -1, GID: -1, Home: r.home,
			Mail: "maildir:~/Maildir", Tag: f[0], Input: input, Namespaces: nss, RemoteIP: "127.0.0.1", LocalIP: "127.0.0.1"}
		r.mu.Lock()
		r.infos = append(r.infos, info)
		r.mu.Unlock()
		r.srv.Serve(c, info, r.log.logf)
		return
	}
}

// client connects with go-imap's client and logs in.
func (r *rig) client(h *imapclient.UnilateralDataHandler) *imapclient.Client {
	r.t.Helper()
	conn, err := net.Dial("tcp", r.ln.Addr().String())
	if err != nil {
		r.t.Fatal(err)
	}
	c := imapclient.New(conn, &imapclient.Options{UnilateralDataHandler: h})
	r.t.Cleanup(func() { c.Close() })
	if err := c.Login("alice", "secret").Wait(); err != nil {
		r.t.Fatal(err)
	}
	return c
}

// deliver puts a message in a mailbox as dovecot-lda does.
func (r *rig) deliver(box, msg string) uint32 {
	r.t.Helper()
	if box != "INBOX" {
		if err := r.store.Create(box); err != nil && !strings.Contains(err.Error(), "exists") {
			r.t.Fatal(err)
		}
	}
	mb, err := r.store.Mailbox(box)
	if err != nil {
		r.t.Fatal(err)
	}
	uid, _, err := mb.Deliver(strings.NewReader(msg), maildir.DeliverOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return uid
}

// deliverN puts test messages 1 to n in INBOX.
func (r *rig) deliverN(n int) {
	for i := 1; i <= n; i++ {
		r.deliver("INBOX", testMessage(i))
	}
}

func testMessage(n int) string {
	return fmt.Sprintf("From: Bob <bob@example.org>\nTo: alice@example.com\nSubject: test %d\nDate: Fri, 27 Nov 2026 08:00:%02d +0000\nMessage-ID: <m%d@example.org>\n\nbody %d\nline two\n", n, n%60, n, n)
}

// tempHome is a home folder that other users (the oracle's nobody) can
// reach, unlike t.TempDir's.
func tempHome(t testing.TB) string {
	t.Helper()
	home, err := os.MkdirTemp("", "imap-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	os.Chmod(home, 0755)
	return home
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// rawConn is a logged-in connection spoken to line by line.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (r *rig) raw(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", r.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	rc.br.ReadString('\n')
	rc.send("a0 LOGIN alice secret\n")
	return rc
}

// send writes the script's lines (each a command) and returns the
// replies up to the last command's tagged one.
func (rc *rawConn) send(script string) string {
	rc.t.Helper()
	lines := strings.Split(strings.TrimRight(script, "\n"), "\n")
	last := strings.Fields(lines[len(lines)-1])[0] + " "
	fmt.Fprint(rc.c, strings.Join(lines, "\r\n")+"\r\n")
	var b strings.Builder
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		l, err := rc.br.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("%v after %q", err, b.String())
		}
		b.WriteString(strings.TrimRight(l, "\r\n") + "\n")
		if strings.HasPrefix(l, last) {
			return b.String()
		}
	}
}
