package compat

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/doveconf"
	"postdove/pkg/lmtp"
)

// postdoveLMTP is pkg/lmtp's Serve on a unix socket (mode 0666), in this
// process, with the log collected.
type postdoveLMTP struct {
	Socket string
	mu     sync.Mutex
	log    []string
}

func startPostdoveLMTP(t *testing.T, socket, conf string) *postdoveLMTP {
	t.Helper()
	cfg, err := doveconf.Parse("dovecot.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(socket, 0o666)
	p := &postdoveLMTP{Socket: socket}
	done := make(chan error, 1)
	go func() {
		done <- lmtp.Serve(ln, cfg, func(format string, args ...any) {
			p.mu.Lock()
			p.log = append(p.log, fmt.Sprintf(format, args...))
			p.mu.Unlock()
		})
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return p
}

func (p *postdoveLMTP) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// lmtpDialog sends cmds on a new connection to socket, one at a time,
// and returns the replies (each reply's last line; DATA's end gets one
// per accepted recipient: nrcpt, in turn).
func lmtpDialog(t *testing.T, socket string, cmds []string, nrcpt ...int) []string {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	read := func(n int) []string {
		var out []string
		for len(out) < n {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%v after %q", err, out)
			}
			if l = strings.TrimRight(l, "\r\n"); len(l) < 4 || l[3] != '-' {
				out = append(out, l)
			}
		}
		return out
	}
	out := read(1)
	for _, cmd := range cmds {
		fmt.Fprintf(c, "%s\r\n", cmd)
		n := 1
		if strings.HasSuffix(cmd, "\r\n.") {
			n, nrcpt = nrcpt[0], nrcpt[1:]
		}
		out = append(out, read(n)...)
	}
	return out
}

// TestLMTPServerDovecot: the same LMTP conversation with the real
// Dovecot's lmtp and with postdove's, both on passwd-file users: the
// replies (but go-smtp's own greeting and OK texts), the log lines and
// the saved messages are the same but for ids, pids and dates.
func TestLMTPServerDovecot(t *testing.T) {
	users := map[string]string{"a@x.example": "", "b@x.example": ""}
	d := startDovecotLMTP(t, users)
	dir := publicTempDir(t)
	mail := filepath.Join(dir, "mail")
	os.Mkdir(mail, 0o777)
	os.Chmod(mail, 0o777)
	var pw strings.Builder
	for u := range users {
		fmt.Fprintf(&pw, "%s:{PLAIN}x:65534:65534::%s/%s::\n", u, mail, u)
	}
	passwd := filepath.Join(dir, "users")
	os.WriteFile(passwd, []byte(pw.String()), 0o644)
	host, _ := os.Hostname()
	ours := startPostdoveLMTP(t, filepath.Join(dir, "lmtp"), fmt.Sprintf("protocols = lmtp\nfirst_valid_uid = 1\nhostname = %s\n"+
		"mail_location = maildir:%s/%%u/Maildir\nuserdb {\n  driver = passwd-file\n  args = %s\n}\n", host, mail, passwd))

	cmds := []string{"LHLO client.example", "MAIL FROM:<s@y.example>", "RCPT TO:<a@x.example>", "RCPT TO:<nobody@x.example>",
		"RCPT TO:<b@x.example>", "RCPT TO:<a@x.example>", "DATA", "Subject: hi\r\nMessage-ID: <m1@y>\r\n\r\nbody\r\n..dot\r\n.",
		"MAIL FROM:<s@y.example>", "RCPT TO:<b@x.example>", "DATA", "Subject: two\r\n\r\nx\r\n.", "NOOP", "QUIT"}
	ids := regexp.MustCompile(`[\w+/]{22}`)
	norm := func(replies []string) []string {
		var out []string
		for i, r := range replies {
			if i == 0 || (strings.HasPrefix(r, "250 ") && !strings.Contains(r, "Saved")) || strings.HasPrefix(r, "221 ") || strings.HasPrefix(r, "354 ") {
				r = r[:3] // go-smtp's greeting and OK texts
			}
			out = append(out, ids.ReplaceAllString(r, "ID"))
		}
		return out
	}
	theirs := norm(lmtpDialog(t, d.Socket, cmds, 3, 1))
	mine := norm(lmtpDialog(t, ours.Socket, cmds, 3, 1))
	if strings.Join(mine, "\n") != strings.Join(theirs, "\n") {
		t.Errorf("replies:\npostdove:\n%s\nDovecot:\n%s", strings.Join(mine, "\n"), strings.Join(theirs, "\n"))
	}
	// The log lines, without times, pids and ids.
	logShape := func(log string) []string {
		var out []string
		for _, l := range strings.Split(log, "\n") {
			if i := strings.Index(l, "lmtp("); i >= 0 && !strings.Contains(l, "127.0.0.1") {
				l = strings.Replace(l[i:], "Info: ", "", 1)
				l = regexp.MustCompile(`^lmtp\(\d+\)`).ReplaceAllString(l, "lmtp(PID)")
				l = regexp.MustCompile(`<\d+><`).ReplaceAllString(l, "<PID><")
				out = append(out, ids.ReplaceAllString(l, "ID"))
			}
		}
		return out
	}
	waitFor(func() bool { return strings.Contains(ours.Log(), "Disconnect") })
	dlog, _ := os.ReadFile(d.Log)
	if got, want := strings.Join(logShape(ours.Log()), "\n"), strings.Join(logShape(string(dlog)), "\n"); got != want {
		t.Errorf("log:\npostdove:\n%s\nDovecot:\n%s", got, want)
	}
	// The saved messages, without ids and dates.
	saved := func(root string) string {
		var out []string
		for u := range users {
			ents, _ := os.ReadDir(filepath.Join(root, u, "Maildir", "new"))
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(root, u, "Maildir", "new", e.Name()))
				s := regexp.MustCompile(`; \w{3}, \d\d \w{3} \d{4} [\d:]{8} [+-]\d{4}`).ReplaceAllString(string(b), "; DATE")
				out = append(out, u+":\n"+ids.ReplaceAllString(s, "ID"))
			}
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	if got, want := saved(mail), saved(d.Mail); got != want || got == "" {
		t.Errorf("saved:\npostdove:\n%s\nDovecot:\n%s", got, want)
	}
}

// TestLMTPServerPostfix: mailbox_transport = lmtp:unix:private/dovecot-lmtp
// in the real Postfix and in postdove, postdove's LMTP server on that
// socket: mail to a system user lands in ~/Maildir/new, owned by the
// user, and the lmtp log lines of both are the same.
func TestLMTPServerPostfix(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	conf := "protocols = lmtp\nmail_location = maildir:~/Maildir\nfirst_valid_uid = 500\nauth_username_format = %Ln\n" +
		"hostname = mail.example.test\nuserdb {\n  driver = passwd\n}\n"
	opt := oracle.PostfixOptions{MainCF: "mailbox_transport = lmtp:unix:private/dovecot-lmtp\n"}
	shapes := map[string][]string{}
	for _, system := range []string{"postfix", "postdove"} {
		var inst *oracle.Instance
		if system == "postfix" {
			inst = oracle.StartPostfix(t, opt)
		} else {
			inst = oracle.StartPostdove(t, opt)
		}
		ours := startPostdoveLMTP(t, filepath.Join(inst.QueueDir, "private", "dovecot-lmtp"), conf)
		u := oracle.AddUser(t, inst.HomeDir, "lmtpu")
		res := oracle.RunLimit(inst.Sendmail("-i", "-f", "sender@example.org", u.Name), "Subject: via "+system+"\n\nbody\n.dot\n", 20*time.Second)
		if res.Code != 0 {
			t.Fatalf("%s sendmail: %+v", system, res)
		}
		if !waitFor(func() bool { return strings.Contains(inst.ReadMaillog(), "status=sent") }) {
			t.Fatalf("%s: not delivered; maillog:\n%s\nlmtp log:\n%s", system, inst.ReadMaillog(), ours.Log())
		}
		log := inst.ReadMaillog()
		want := regexp.MustCompile(`postfix/lmtp\[\d+\]: [0-9A-F]+: to=<` + u.Name + `@mail.example.test>, orig_to=<` + u.Name + `>, relay=mail.example.test\[private/dovecot-lmtp\], delay=[\d.]+, delays=[\d./]+, dsn=2.0.0, status=sent \(250 2.0.0 <` +
			u.Name + `@mail.example.test> [\w+/]{22} Saved\)`)
		if !want.MatchString(log) {
			t.Errorf("%s: no lmtp status=sent line like %s:\n%s", system, want, log)
		}
		var shape []string
		for _, l := range smtpLogShape(log, "-") {
			l = strings.ReplaceAll(l, inst.QueueDir, "QUEUE")
			l = strings.ReplaceAll(l, u.Name, "USER")
			shape = append(shape, regexp.MustCompile(`> [\w+/]{22} Saved`).ReplaceAllString(l, "> ID Saved"))
		}
		shapes[system] = shape
		ents, err := os.ReadDir(u.Maildir())
		if err != nil || len(ents) != 1 {
			t.Fatalf("%s: %s: %v %v", system, u.Maildir(), ents, err)
		}
		path := filepath.Join(u.Maildir(), ents[0].Name())
		fi, _ := os.Stat(path)
		if owner := int(fi.Sys().(*syscall.Stat_t).Uid); owner != u.UID {
			t.Errorf("%s: %s owned by %d, want %d", system, path, owner, u.UID)
		}
		b, _ := os.ReadFile(path)
		if !regexp.MustCompile(`^Return-Path: <sender@example.org>\nDelivered-To: `+u.Name+`@mail.example.test\nReceived: from mail.example.test\n\tby mail.example.test with LMTP\n`).Match(b) ||
			!strings.HasSuffix(string(b), "\n\nbody\n.dot\n") {
			t.Errorf("%s: saved:\n%s", system, b)
		}
		inst.Stop()
	}
	if got, want := strings.Join(shapes["postdove"], "\n"), strings.Join(shapes["postfix"], "\n"); got != want || got == "" {
		t.Errorf("lmtp log lines:\npostdove:\n%s\npostfix:\n%s", got, want)
	}
}
