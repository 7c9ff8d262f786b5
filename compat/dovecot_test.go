package compat

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// dovecotUser is the passwd-file account both sides log in.
const (
	dovecotUser = "tuser"
	dovecotPass = "secret"
	dovecotUID  = 54321
)

// dovecotServer is one dovecot master (the oracle's or postdove's) on the
// lab's configuration tree, listening on 127.0.0.1.
type dovecotServer struct {
	name  string
	dir   string
	log   string
	ports map[string]int // imap, imaps, pop3, pop3s
}

// labDovecotConf copies the stock etc/dovecot tree (CentOS 7's) to dir
// and writes its local.conf (included last by the stock dovecot.conf):
// the oracle's service executables, base_dir and log_path in dir, a
// passwd-file passdb and userdb in place of the stock PAM one, the
// listeners on 127.0.0.1 with the given ports, then edits (the lab's
// changes, such as disable_plaintext_auth = no). It returns the path of
// dovecot.conf.
func labDovecotConf(t testing.TB, o *oracle.Oracle, dir string, ports map[string]int, cert, key, edits string) string {
	t.Helper()
	src := filepath.Join(repoRoot(t), "etc/dovecot")
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dovecot.conf", "conf.d/*"} {
		files, _ := filepath.Glob(filepath.Join(src, name))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(src, f)
			// The certificate make install puts in /etc/pki/dovecot.
			b = []byte(strings.NewReplacer("/etc/pki/dovecot/certs/dovecot.pem", cert, "/etc/pki/dovecot/private/dovecot.pem", key).Replace(string(b)))
			if rel == "conf.d/10-auth.conf" {
				// The passwd-file below instead of PAM.
				b = []byte(strings.Replace(string(b), "\n!include auth-system.conf.ext", "\n#!include auth-system.conf.ext", 1))
			}
			if err := os.WriteFile(filepath.Join(dir, rel), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, sub := range []string{"run", "home"} {
		os.Mkdir(filepath.Join(dir, sub), 0o755)
	}
	home := filepath.Join(dir, "home", dovecotUser)
	os.Mkdir(home, 0o700)
	os.Chown(home, dovecotUID, dovecotUID)
	users := filepath.Join(dir, "users")
	pw := fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s\n", dovecotUser, dovecotPass, dovecotUID, dovecotUID, home)
	if err := os.WriteFile(users, []byte(pw), 0o644); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`protocols = imap pop3
listen = 127.0.0.1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = %s
}
userdb {
  driver = passwd-file
  args = %s
}
service imap-login {
  inet_listener imap {
    port = %d
  }
  inet_listener imaps {
    port = %d
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %d
  }
  inet_listener pop3s {
    port = %d
  }
}
%s`, users, users, ports["imap"], ports["imaps"], ports["pop3"], ports["pop3s"], edits)
	// authServerConf's ssl = no would hide the stock ssl = required.
	local := strings.Replace(authServerConf(o, dir, body), "ssl = no\n", "", 1)
	if err := os.WriteFile(filepath.Join(dir, "local.conf"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "dovecot.conf")
}

func repoRoot(t testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// startDovecots starts the oracle's dovecot and postdove's on the same
// configuration (edits applied), each in its own folder and ports.
func startDovecots(t testing.TB, edits string) []*dovecotServer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (the dovecot masters)")
	}
	o := oracle.Get(t)
	if _, err := os.Stat(filepath.Join(o.Root, "usr/lib/dovecot/imap-login")); err != nil {
		t.Skip("the oracle has no imap-login (run compat/fetch-oracle.sh)")
	}
	cert, key := oracle.SelfSignedCert(t, "localhost")
	var out []*dovecotServer
	for _, name := range []string{"Dovecot", "postdove"} {
		d := &dovecotServer{name: name, dir: publicTempDir(t), ports: map[string]int{}}
		d.log = filepath.Join(d.dir, "dovecot.log")
		for _, p := range []string{"imap", "imaps", "pop3", "pop3s"} {
			d.ports[p] = oracle.FreePort(t, "127.0.0.1")
		}
		conf := labDovecotConf(t, o, d.dir, d.ports, cert, key, edits)
		if name == "Dovecot" {
			oracleDovecotMaster(t, o, conf, filepath.Join(d.dir, "run"), true)
		} else {
			startPostdoveDovecot(t, conf)
		}
		d.waitListening(t)
		out = append(out, d)
	}
	return out
}

// startPostdoveDovecot runs bin/dovecot -F on conf until the test ends,
// with the dovecot accounts the stock configuration names.
func startPostdoveDovecot(t testing.TB, conf string) {
	t.Helper()
	cmd := oracle.WithDovecotUsers(t, exec.Command(oracle.Postdove(t, "dovecot"), "-F", "-c", conf))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
}

// waitListening waits until d greets an IMAP client (Dovecot does once
// its auth service is up) and has logged that client's LOGOUT.
func (d *dovecotServer) waitListening(t testing.TB) {
	t.Helper()
	for i := 0; ; i++ {
		if got := d.run(dovecotDialogue{listener: "imap", from: "127.0.0.1", lines: []string{"a LOGOUT"}}); len(got) == 4 {
			if d.loginLog(0, "127.0.0.1", 1) != nil {
				return
			}
		}
		if i == 100 {
			log, _ := os.ReadFile(d.log)
			t.Fatalf("%s's dovecot does not listen:\n%s", d.name, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dovecotDialogue is one client session: the listener, the address the
// client connects from (127.0.0.2 is not the server's address, so not
// secured), and the lines it sends. After a line marked with a leading
// "@" (a login that succeeds) the session is post-login, pkg/imap's or
// pkg/pop3's part: its reply is not compared and the client hangs up.
type dovecotDialogue struct {
	name     string
	listener string
	from     string
	lines    []string
}

// run plays dl against d and returns what the client saw, line by line,
// with ">" before what it sent.
func (d *dovecotServer) run(dl dovecotDialogue) []string {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(dl.from)}, Timeout: 5 * time.Second}
	addr := fmt.Sprintf("127.0.0.1:%d", d.ports[dl.listener])
	var c net.Conn
	var err error
	if strings.HasSuffix(dl.listener, "s") {
		c, err = tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return []string{"<" + err.Error() + ">"}
	}
	defer func() { c.Close() }()
	imap := strings.HasPrefix(dl.listener, "imap")
	var seen []string
	r := bufio.NewReader(c)
	// read takes lines until done says the reply is over, or EOF.
	read := func(done func(string) bool) bool {
		for {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			l, err := r.ReadString('\n')
			if l != "" {
				seen = append(seen, strings.TrimSuffix(l, "\r\n"))
			}
			if err != nil {
				seen = append(seen, closed(err))
				return false
			}
			if done(strings.TrimSuffix(l, "\r\n")) {
				return true
			}
		}
	}
	one := func(string) bool { return true }
	if !read(one) {
		return seen
	}
	tag := ""
	for _, line := range dl.lines {
		final := strings.HasPrefix(line, "@")
		line = strings.TrimPrefix(line, "@")
		seen = append(seen, "> "+line)
		if _, err := io.WriteString(c, line+"\r\n"); err != nil {
			seen = append(seen, closed(err))
			return seen
		}
		if final {
			// The post-login reply is written by the mail process.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			r.ReadString('\n')
			return seen
		}
		var done func(string) bool
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		switch {
		case imap:
			if !strings.HasPrefix(seenLast(seen, 1), "+ ") {
				tag = strings.Fields(line + " x")[0]
			}
			untagged := tag == "*" || strings.TrimSpace(line) == ""
			done = func(l string) bool {
				return strings.HasPrefix(l, tag+" ") || strings.HasPrefix(l, "+ ") || untagged && strings.HasPrefix(l, "* BAD")
			}
		case cmd == "CAPA" || line == "AUTH":
			first := true
			done = func(l string) bool {
				end := l == "." || first && (strings.HasPrefix(l, "-ERR") || strings.HasPrefix(l, "+ "))
				first = false
				return end
			}
		default:
			done = one
		}
		if !read(done) {
			return seen
		}
		last := seenLast(seen, 0)
		if strings.Contains(last, "Begin TLS negotiation now.") {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			if err := tc.Handshake(); err != nil {
				return append(seen, "<TLS: "+err.Error()+">")
			}
			c, r = tc, bufio.NewReader(tc)
		}
	}
	return seen
}

// closed is how the end of a session is shown: the server hanging up
// shows as EOF, a reset or a broken pipe (when the client writes after
// it) alike.
func closed(err error) string {
	if err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return "<closed>"
	}
	return "<" + err.Error() + ">"
}

func seenLast(seen []string, back int) string {
	if len(seen) <= back+1 {
		return ""
	}
	return seen[len(seen)-1-back]
}

var (
	logTime     = regexp.MustCompile(`^\w{3} [ \d]\d \d\d:\d\d:\d\d `)
	logSession  = regexp.MustCompile(`session=<[^>]*>`)
	logPid      = regexp.MustCompile(`mpid=\d+|<\d+>|\(\d+\)`)
	logSecs     = regexp.MustCompile(`\d+ secs`)
	logRevision = regexp.MustCompile(`v([\d.]+) \(\w+\)`)
	logSender   = regexp.MustCompile(` \(by pid=\d+ uid=\d+ code=\w+\)$`)
)

// loginLog returns the login processes' lines d logged after offset for
// clients from rip, waiting until at least want of them are there and no
// more come; pids, session ids and durations are replaced by placeholders.
func (d *dovecotServer) loginLog(offset int64, rip string, want int) []string {
	var lines []string
	stable := 0
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(d.log)
		var now []string
		if int64(len(b)) > offset {
			for _, l := range strings.Split(string(b[offset:]), "\n") {
				l = logTime.ReplaceAllString(l, "")
				if (strings.HasPrefix(l, "imap-login: ") || strings.HasPrefix(l, "pop3-login: ")) && strings.Contains(l, "rip="+rip+",") {
					l = logSession.ReplaceAllString(l, "session=<S>")
					l = logPid.ReplaceAllString(l, "PID")
					now = append(now, logSecs.ReplaceAllString(l, "N secs"))
				}
			}
		}
		if len(now) == len(lines) && len(now) >= want {
			if stable++; stable == 4 {
				break
			}
		} else {
			stable = 0
		}
		lines = now
	}
	return lines
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// dovecotDialogues are the pre-login sessions every configuration is
// tried with, from 127.0.0.1 (the server's own address: secured) and
// from another loopback address (not secured, in Dovecot's eyes): one of
// its own for each dialogue, 127.0.1.N, so that they can run at once
// and their log lines be told apart.
func dovecotDialogues() []dovecotDialogue {
	plain := "AHR1c2VyAHNlY3JldA==" // \0tuser\0secret
	wrong := "AHR1c2VyAHdyb25n"     // \0tuser\0wrong
	var out []dovecotDialogue
	for _, from := range []string{"127.0.0.1", "127.0.1.N"} {
		bad := []string{}
		for i := 0; i < 11; i++ {
			bad = append(bad, fmt.Sprintf("b%d FOO", i))
		}
		for _, dl := range []dovecotDialogue{
			{"imap greeting, LOGOUT", "imap", from, []string{"a LOGOUT"}},
			{"imap hang-up", "imap", from, nil},
			{"imap CAPABILITY, NOOP, ID", "imap", from, []string{"a CAPABILITY", "b NOOP", `c ID ("name" "test")`, "d ID NIL", "e LOGOUT"}},
			{"imap bad commands", "imap", from, []string{"", "a", "a FOO", "a SELECT INBOX", "a LOGIN", "a LOGIN x", "a AUTHENTICATE", "* NOOP", "a LOGOUT"}},
			{"imap too many bad commands", "imap", from, bad},
			{"imap LOGIN wrong", "imap", from, []string{"a LOGIN tuser wrong", "b LOGIN nobody x", "c LOGOUT"}},
			{"imap LOGIN wrong, hang-up", "imap", from, []string{"a LOGIN tuser wrong"}},
			{"imap LOGIN", "imap", from, []string{"@a LOGIN tuser secret"}},
			{"imap LOGIN literal", "imap", from, []string{"a LOGIN {5}", "tuser {6}", "@secret"}},
			{"imap AUTHENTICATE PLAIN", "imap", from, []string{"@a AUTHENTICATE PLAIN " + plain}},
			{"imap AUTHENTICATE PLAIN continued", "imap", from, []string{"a AUTHENTICATE PLAIN", "@" + plain}},
			{"imap AUTHENTICATE wrong, cancel, bad", "imap", from, []string{"a AUTHENTICATE PLAIN " + wrong, "b AUTHENTICATE PLAIN", "*", "c AUTHENTICATE PLAIN", "!!!", "d AUTHENTICATE FOO", "e AUTHENTICATE LOGIN", "*", "f LOGOUT"}},
			{"imap AUTHENTICATE bad base64", "imap", from, []string{"a AUTHENTICATE PLAIN", "!!!", "b LOGOUT"}},
			{"imap AUTHENTICATE bad base64 initial", "imap", from, []string{"a AUTHENTICATE PLAIN !!!", "b LOGOUT"}},
			{"imap STARTTLS", "imap", from, []string{"a STARTTLS", "b CAPABILITY", "c STARTTLS", "@d LOGIN tuser secret"}},
			{"imaps", "imaps", from, []string{"a CAPABILITY", "b STARTTLS", "c LOGIN tuser wrong", "@d LOGIN tuser secret"}},
			{"pop3 QUIT", "pop3", from, []string{"QUIT"}},
			{"pop3 hang-up", "pop3", from, nil},
			{"pop3 CAPA, bad commands", "pop3", from, []string{"CAPA", "FOO", "", "STAT", "PASS x", "USER", "AUTH", "NOOP", "QUIT"}},
			{"pop3 too many bad commands", "pop3", from, []string{"FOO", "BAR", "BAZ", "QUX", "QUUX"}},
			{"pop3 PASS without USER", "pop3", from, []string{"PASS x", "PASS y", "USER", "PASS z", "QUIT"}},
			{"pop3 AUTH bad base64", "pop3", from, []string{"AUTH PLAIN", "!!!", "QUIT"}},
			{"pop3 AUTH bad base64 initial", "pop3", from, []string{"AUTH PLAIN !!!", "QUIT"}},
			{"pop3 USER/PASS wrong", "pop3", from, []string{"USER tuser", "PASS wrong", "USER nobody", "PASS x", "QUIT"}},
			{"pop3 USER/PASS", "pop3", from, []string{"USER tuser", "@PASS secret"}},
			{"pop3 AUTH PLAIN", "pop3", from, []string{"AUTH PLAIN " + wrong, "AUTH PLAIN", "*", "AUTH FOO", "@AUTH PLAIN " + plain}},
			{"pop3 STLS", "pop3", from, []string{"STLS", "CAPA", "STLS", "USER tuser", "@PASS secret"}},
			{"pop3s", "pop3s", from, []string{"CAPA", "STLS", "USER tuser", "PASS wrong", "QUIT"}},
		} {
			if from == "127.0.0.1" {
				dl.name += " from 127.0.0.1"
			} else {
				dl.name += " from elsewhere"
				dl.from = fmt.Sprintf("127.0.1.%d", len(out)+1)
			}
			out = append(out, dl)
		}
	}
	return out
}

// TestDovecotPreLogin: the oracle's Dovecot and postdove's, on the stock
// CentOS configuration tree with the lab's edits, answer every pre-login
// dialogue alike (greetings, capabilities, LOGIN and AUTHENTICATE
// replies, the privacy rules, STARTTLS, bad commands; POP3 likewise) and
// log the same login-process lines for them.
func TestDovecotPreLogin(t *testing.T) {
	for _, c := range []struct{ name, edits string }{
		{"stock", ""}, // ssl = required, disable_plaintext_auth = yes
		{"ssl=yes", "ssl = yes\n"},
		{"ssl=yes plaintext", "ssl = yes\ndisable_plaintext_auth = no\n"},
		{"ssl=no", "ssl = no\n"},
		{"ssl=no plaintext", "ssl = no\ndisable_plaintext_auth = no\n"},
		{"trusted", "ssl = no\nlogin_trusted_networks = 127.0.0.0/8\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sides := startDovecots(t, c.edits)
			// The dialogues from 127.0.0.1 one after the other, the
			// others (each from its own address) at the same time.
			var local, elsewhere sync.WaitGroup
			var mu sync.Mutex
			var sequential []dovecotDialogue
			for _, dl := range dovecotDialogues() {
				if strings.HasSuffix(dl.listener, "s") && strings.HasPrefix(c.edits, "ssl = no") {
					continue
				}
				if dl.from == "127.0.0.1" {
					sequential = append(sequential, dl)
					continue
				}
				elsewhere.Add(1)
				go func() {
					defer elsewhere.Done()
					msgs := compareDialogue(sides, dl)
					mu.Lock()
					defer mu.Unlock()
					for _, m := range msgs {
						t.Error(m)
					}
				}()
			}
			local.Add(1)
			go func() {
				defer local.Done()
				for _, dl := range sequential {
					msgs := compareDialogue(sides, dl)
					mu.Lock()
					for _, m := range msgs {
						t.Error(m)
					}
					mu.Unlock()
				}
			}()
			local.Wait()
			elsewhere.Wait()
		})
	}
}

// compareDialogue plays dl against both sides at once and returns how
// what the clients saw, or what the servers logged, differ.
func compareDialogue(sides []*dovecotServer, dl dovecotDialogue) []string {
	var got, logs [2][]string
	var wg sync.WaitGroup
	for i, d := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := logSize(d.log)
			got[i] = d.run(dl)
			logs[i] = d.loginLog(off, dl.from, 1)
		}()
	}
	wg.Wait()
	// Debian builds Dovecot with its own login_greeting; CentOS's is
	// Dovecot's.
	for j, l := range got[0] {
		got[0][j] = strings.Replace(l, "Dovecot (Debian) ready.", "Dovecot ready.", 1)
	}
	var msgs []string
	if a, b := strings.Join(got[0], "\n"), strings.Join(got[1], "\n"); a != b {
		msgs = append(msgs, fmt.Sprintf("%s:\n--- Dovecot\n%s\n--- postdove\n%s", dl.name, a, b))
	}
	if a, b := strings.Join(logs[0], "\n"), strings.Join(logs[1], "\n"); a != b {
		msgs = append(msgs, fmt.Sprintf("%s: log:\n--- Dovecot\n%s\n--- postdove\n%s", dl.name, a, b))
	}
	return msgs
}

// TestDovecotMasterLog: the master's own lines, at start and when it is
// killed with SIGTERM (as dovecot stop and systemd do), are Dovecot's.
func TestDovecotMasterLog(t *testing.T) {
	sides := startDovecots(t, "")
	var logs [2][]string
	for i, d := range sides {
		pid := d.masterPID(t)
		syscall.Kill(pid, syscall.SIGTERM)
		// The master stays a zombie until the test's cleanup waits for
		// it: the log tells when it is done.
		var b []byte
		for end := time.Now().Add(10 * time.Second); !bytes.Contains(b, []byte("Killed with signal")) && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			b, _ = os.ReadFile(d.log)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = logTime.ReplaceAllString(l, ""); strings.HasPrefix(l, "master: ") {
				// The revision is Dovecot's git commit, postdove's name.
				l = logRevision.ReplaceAllString(l, "v$1 (REV)")
				// Dovecot names the signal's sender from its siginfo,
				// which Go's os/signal does not give: left out.
				l = logSender.ReplaceAllString(l, "")
				logs[i] = append(logs[i], logPid.ReplaceAllString(l, "PID"))
			}
		}
	}
	if a, b := strings.Join(logs[0], "\n"), strings.Join(logs[1], "\n"); a != b {
		t.Errorf("master lines:\n--- Dovecot\n%s\n--- postdove\n%s", a, b)
	}
}
