package pop3

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"postdove/pkg/handoff"
)

// testMail is the Maildir the tests start from: two messages in new/, one
// in cur/ already seen, with a dovecot-uidlist as Dovecot wrote it.
var testMail = map[string]string{
	"new/1000.M1P1.h,S=37": "Subject: a\nMessage-ID: <x1@y>\n\nhello\n",
	"new/1001.M1P2.h":      "Subject: b\n\nbody two\nline\n",
	"cur/1002.M1P3.h:2,S":  "Subject: c\n\n.dot\nx",
	"dovecot-uidlist":      "3 V1795766220 N4 G7db12e31cc37096bc61f000083ecc375\n1 W41 :1000.M1P1.h,S=37\n2 W30 :1001.M1P2.h\n3 :1002.M1P3.h\n",
}

// makeMaildir writes testMail under home/Maildir.
func makeMaildir(t testing.TB, home string) string {
	t.Helper()
	root := filepath.Join(home, "Maildir")
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range testMail {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// listMaildir names the message files under new/ and cur/.
func listMaildir(t testing.TB, root string) []string {
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(root, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, sub+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// loginSide plays pop3-login on 127.0.0.1: it greets, takes USER and PASS
// (any password) and hands the connection to Serve. The log lines are
// collected.
type loginSide struct {
	Addr string
	mu   sync.Mutex
	log  []string
	wg   sync.WaitGroup
}

func startLogin(t *testing.T, home string, settings map[string]string) *loginSide {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &loginSide{Addr: ln.Addr().String()}
	srv := NewServer()
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.handle(c, srv, home, settings)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-accepting; l.wg.Wait() })
	return l
}

func (l *loginSide) handle(c net.Conn, srv handoff.Server, home string, settings map[string]string) {
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "+OK Dovecot ready.\r\n")
	user := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(cmd) {
		case "USER":
			user = arg
			fmt.Fprintf(c, "+OK\r\n")
			continue
		case "PASS":
		default:
			fmt.Fprintf(c, "-ERR Unknown command.\r\n")
			continue
		}
		break
	}
	// What the reader already holds travels with the connection.
	buffered, _ := r.Peek(r.Buffered())
	info := &handoff.Info{Protocol: "pop3", User: user, UID: os.Getuid(), GID: os.Getgid(), Home: home,
		Mail: "maildir:~/Maildir", Session: "sess", Input: append([]byte(nil), buffered...), Settings: settings}
	srv.Serve(c, info, func(format string, args ...any) {
		l.mu.Lock()
		l.log = append(l.log, fmt.Sprintf(format, args...))
		l.mu.Unlock()
	})
}

// lines returns the log once n sessions have logged their last line.
func (l *loginSide) lines(n int) []string {
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		out := append([]string(nil), l.log...)
		l.mu.Unlock()
		if len(out) >= n || time.Now().After(end) {
			return out
		}
	}
}

// poplib runs a Python poplib client against addr; the script's output
// is JSON.
func poplib(t *testing.T, addr, script string) map[string]any {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is needed for poplib")
	}
	host, port, _ := net.SplitHostPort(addr)
	prog := "import poplib, json, sys\nout = {}\np = poplib.POP3(" + fmt.Sprintf("%q, %s", host, port) + ", timeout=10)\n" +
		"out['welcome'] = p.getwelcome().decode()\np.user('alice')\nout['pass'] = p.pass_('secret').decode()\n" +
		"def d(x):\n    if isinstance(x, bytes): return x.decode()\n    if isinstance(x, (list, tuple)): return [d(i) for i in x]\n    return x\n" +
		script + "\nprint(json.dumps(out))\n"
	cmd := exec.Command(py, "-c", prog)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("poplib: %v\n%s", err, outb)
	}
	var out map[string]any
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("poplib output %q: %v", outb, err)
	}
	return out
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPoplib: Python's poplib logs in through the login side and reads,
// deletes and quits; the replies, the files left and the log line are
// Dovecot's (as compat's TestPOP3Dovecot checks against the real one).
func TestPoplib(t *testing.T) {
	home := t.TempDir()
	root := makeMaildir(t, home)
	l := startLogin(t, home, nil)
	out := poplib(t, l.Addr, `
out['stat'] = p.stat()
out['list'] = d(p.list())
out['uidl'] = d(p.uidl())
out['uidl2'] = d(p.uidl(2))
out['retr'] = d(p.retr(1))
out['top'] = d(p.top(2, 1))
out['retr3'] = d(p.retr(3))
out['dele'] = d(p.dele(1))
try:
    p.retr(1)
except poplib.error_proto as e:
    out['retrdeleted'] = d(e.args[0])
try:
    p._shortcmd('FOO')
except poplib.error_proto as e:
    out['foo'] = d(e.args[0])
out['capa'] = d(p.capa())
out['noop'] = d(p.noop())
out['quit'] = d(p.quit())
`)
	want := map[string]string{
		"pass":        `"+OK Logged in."`,
		"stat":        `[3,92]`,
		"list":        `["+OK 3 messages:",["1 41","2 30","3 21"],18]`,
		"uidl":        `["+OK",["1 000000016b0937cc","2 000000026b0937cc","3 000000036b0937cc"],60]`,
		"uidl2":       `"+OK 2 000000026b0937cc"`,
		"retr":        `["+OK 41 octets",["Subject: a","Message-ID: \u003cx1@y\u003e","","hello"],41]`,
		"top":         `["+OK",["Subject: b","","body two"],24]`,
		"retr3":       `["+OK 21 octets",["Subject: c","",".dot","x"],23]`,
		"dele":        `"+OK Marked to be deleted."`,
		"retrdeleted": `"-ERR Message is deleted."`,
		"foo":         `"-ERR Unknown command: FOO"`,
		"capa":        `{"AUTH-RESP-CODE":[],"CAPA":[],"PIPELINING":[],"RESP-CODES":[],"TOP":[],"UIDL":[]}`,
		"noop":        `"+OK"`,
		"quit":        `"+OK Logging out, messages deleted."`,
	}
	for k, v := range want {
		if got := jsonString(out[k]); got != v {
			t.Errorf("%s: got %s, want %s", k, got, v)
		}
	}
	files := strings.Join(listMaildir(t, root), " ")
	if wantFiles := "cur/1001.M1P2.h:2, cur/1002.M1P3.h:2,S"; files != wantFiles {
		t.Errorf("files after QUIT: %s, want %s", files, wantFiles)
	}
	uidlist, _ := os.ReadFile(filepath.Join(root, "dovecot-uidlist"))
	if strings.Contains(string(uidlist), "1000.M1P1") {
		t.Errorf("the expunged message is still in dovecot-uidlist:\n%s", uidlist)
	}
	log := l.lines(1)
	if len(log) != 1 || log[0] != "Disconnected: Logged out top=1/29, retr=2/95, del=1/3, size=92" {
		t.Errorf("log: %q", log)
	}
}

// TestRetrSeen: a message RETR sent gets \Seen at QUIT (TOP does not set
// it); a session that ends without QUIT changes nothing but new/ → cur/,
// and RSET forgets both deletions and what was read.
func TestRetrSeen(t *testing.T) {
	home := t.TempDir()
	root := makeMaildir(t, home)
	l := startLogin(t, home, nil)
	conv := func(cmds ...string) string {
		c, err := net.Dial("tcp", l.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		r.ReadString('\n')
		fmt.Fprintf(c, "USER alice\r\nPASS x\r\n%s", strings.Join(cmds, ""))
		var b strings.Builder
		for {
			line, err := r.ReadString('\n')
			b.WriteString(line)
			if err != nil {
				return b.String()
			}
		}
	}
	// No QUIT: the client hangs up after RETR and DELE.
	c, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "USER alice\r\nPASS x\r\nDELE 1\r\nRETR 2\r\n")
	for {
		line, _ := r.ReadString('\n')
		if line == ".\r\n" || line == "" {
			break
		}
	}
	c.Close()
	if got := strings.Join(l.lines(1), "\n"); got != "Disconnected: Connection closed top=0/0, retr=1/45, del=0/3, size=92" {
		t.Errorf("log: %q", got)
	}
	if files := strings.Join(listMaildir(t, root), " "); files != "cur/1000.M1P1.h,S=37:2, cur/1001.M1P2.h:2, cur/1002.M1P3.h:2,S" {
		t.Errorf("files after a dropped session: %s", files)
	}
	out := conv("RETR 1\r\nRSET\r\nTOP 2 0\r\nRETR 01\r\nRETR 2x\r\nLIST 1 2\r\nTOP 1\r\nTOP 1 x\r\nRETR 4294967297\r\nLIST 0\r\n\r\nNOOP x\r\nUSER y\r\nQUIT\r\n")
	want := "+OK\r\n+OK Logged in.\r\n" +
		"+OK 41 octets\r\nSubject: a\r\nMessage-ID: <x1@y>\r\n\r\nhello\r\n.\r\n+OK\r\n" +
		"+OK\r\nSubject: b\r\n\r\n.\r\n" +
		"+OK 41 octets\r\nSubject: a\r\nMessage-ID: <x1@y>\r\n\r\nhello\r\n.\r\n" +
		"-ERR Noise after message number: x\r\n-ERR Noise after message number:  2\r\n" +
		"-ERR Noise after message number: \r\n-ERR Invalid size: x\r\n-ERR Message number too large: \r\n" +
		"-ERR There's no message 0.\r\n-ERR Unknown command.\r\n+OK\r\n-ERR Unknown command: USER\r\n+OK Logging out.\r\n"
	if out != want {
		t.Errorf("conversation:\n%q\nwant\n%q", out, want)
	}
	if files := strings.Join(listMaildir(t, root), " "); files != "cur/1000.M1P1.h,S=37:2,S cur/1001.M1P2.h:2, cur/1002.M1P3.h:2,S" {
		t.Errorf("files after QUIT: %s", files)
	}
}

// TestConcurrentSessions: sessions of one user run at once; each sees its
// snapshot and the DELEs of all of them take effect.
func TestConcurrentSessions(t *testing.T) {
	home := t.TempDir()
	root := makeMaildir(t, home)
	l := startLogin(t, home, nil)
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", l.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			var conv []string
			read := func() string {
				line, err := r.ReadString('\n')
				conv = append(conv, line)
				if err != nil {
					t.Errorf("session %d: %v after %q", i, err, conv)
				}
				return strings.TrimRight(line, "\r\n")
			}
			// The message numbers differ between the sessions' snapshots:
			// each finds the message with UID i by its UIDL.
			fmt.Fprintf(c, "USER alice\r\nPASS x\r\nUIDL\r\n")
			n := ""
			for line := read(); line != "." && !strings.HasPrefix(line, "-ERR") && len(conv) < 20; line = read() {
				if num, uidl, _ := strings.Cut(line, " "); uidl == fmt.Sprintf("%08x6b0937cc", i) {
					n = num
				}
			}
			fmt.Fprintf(c, "RETR %s\r\nDELE %s\r\nQUIT\r\n", n, n)
			for line := read(); !strings.HasPrefix(line, "+OK Logging out") && len(conv) < 40; line = read() {
			}
		}()
	}
	wg.Wait()
	if files := listMaildir(t, root); len(files) != 0 {
		t.Errorf("left: %q; log %q", files, l.lines(3))
	}
}

// TestUIDLFormat: pop3_uidl_format and pop3_logout_format come from the
// settings.
func TestUIDLFormat(t *testing.T) {
	home := t.TempDir()
	makeMaildir(t, home)
	l := startLogin(t, home, map[string]string{"pop3_uidl_format": "%u.%v-%f", "pop3_logout_format": "n=%m %%"})
	out := poplib(t, l.Addr, "out['uidl'] = d(p.uidl(3))\np.quit()")
	if got := jsonString(out["uidl"]); got != `"+OK 3 3.1795766220-1002.M1P3.h"` {
		t.Errorf("uidl: %s", got)
	}
	if got := strings.Join(l.lines(1), "\n"); got != "Disconnected: Logged out n=3 %" {
		t.Errorf("log: %q", got)
	}
}
