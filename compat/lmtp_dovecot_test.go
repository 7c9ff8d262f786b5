package compat

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// dovecotLMTP is the oracle's real Dovecot running its LMTP server on a
// unix socket and on 127.0.0.1, with a passwd-file userdb of a few
// addresses whose mail goes to maildir:Mail/%u/Maildir.
type dovecotLMTP struct {
	Socket string // the unix listener
	Addr   string // 127.0.0.1:port
	Mail   string // the folder holding each user's Maildir
	Log    string // Dovecot's log_path
}

// startDovecotLMTP starts the oracle's Dovecot master with protocols =
// lmtp, everything (base_dir, config, log, mail) in a fresh folder, and
// stops it when the test ends. users maps each address Dovecot knows to
// its passwd-file extra fields; the quota plugin is on.
func startDovecotLMTP(t *testing.T, users map[string]string) *dovecotLMTP {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (the oracle's Dovecot master)")
	}
	o := oracle.Get(t)
	lmtp := filepath.Join(o.Root, "usr/lib/dovecot/lmtp")
	if _, err := os.Stat(lmtp); err != nil {
		t.Skip("the oracle has no dovecot-lmtpd (run compat/fetch-oracle.sh)")
	}
	dir := publicTempDir(t)
	d := &dovecotLMTP{Socket: filepath.Join(dir, "dovecot-lmtp"), Mail: filepath.Join(dir, "mail"), Log: filepath.Join(dir, "dovecot.log")}
	for _, sub := range []string{"run", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, sub), 0o777)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(d.Addr)
	var pw strings.Builder
	for u, extra := range users {
		// nobody owns the mail: Dovecot's lmtp switches to the user's uid.
		fmt.Fprintf(&pw, "%s:{PLAIN}x:65534:65534::%s/%s::%s\n", u, d.Mail, u, extra)
	}
	passwd := filepath.Join(dir, "users")
	if err := os.WriteFile(passwd, []byte(pw.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("protocols = lmtp\nfirst_valid_uid = 1\nmail_location = maildir:%s/%%u/Maildir\n"+
		"mail_plugins = quota\nplugin {\n  quota = maildir:User quota\n}\n"+
		"passdb {\n  driver = passwd-file\n  args = %s\n}\nuserdb {\n  driver = passwd-file\n  args = %s\n}\n"+
		"service lmtp {\n  executable = %s\n  unix_listener %s {\n    mode = 0666\n  }\n"+
		"  inet_listener lmtp {\n    address = 127.0.0.1\n    port = %s\n  }\n}\n",
		d.Mail, passwd, passwd, lmtp, d.Socket, port)
	conf := writeConf(t, dir, authServerConf(o, dir, body))
	oracleDovecotMaster(t, o, conf, filepath.Join(dir, "run"), true)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", d.Addr)
		if err == nil {
			c.Close()
			if _, err := os.Stat(d.Socket); err == nil {
				break
			}
		}
		if i == 100 {
			log, _ := os.ReadFile(d.Log)
			t.Fatalf("the oracle's Dovecot LMTP server did not start:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d
}

// maildirMessages returns the messages in user's Maildir/new.
func (d *dovecotLMTP) maildirMessages(user string) []string {
	dir := filepath.Join(d.Mail, user, "Maildir", "new")
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out = append(out, string(b))
	}
	return out
}

// TestLMTPDovecot: transport_maps sends one domain to Debian's real
// Dovecot LMTP server over its unix socket and another over TCP on
// 127.0.0.1; each message has recipients Dovecot knows and one it does
// not. The known ones land in the Maildirs Dovecot writes, the unknown
// one bounces with Dovecot's reply, one LMTP session per destination, and
// the lmtp log lines are the real Postfix's against the same server.
func TestLMTPDovecot(t *testing.T) {
	known := []string{"a@unix.example", "b@unix.example", "a@inet.example", "b@inet.example"}
	users := map[string]string{"full@unix.example": "userdb_quota_rule=*:storage=100B", "full@inet.example": "userdb_quota_rule=*:storage=100B"}
	for _, u := range known {
		users[u] = ""
	}
	d := startDovecotLMTP(t, users)
	dir, err := os.MkdirTemp("/var/tmp", "pdtlmtp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	table := filepath.Join(dir, "transport")
	os.WriteFile(table, []byte("unix.example lmtp:unix:"+d.Socket+"\ninet.example lmtp:inet:"+d.Addr+"\n"), 0o644)
	// The bounces go to a local sender whose mail is thrown away.
	opt := oracle.PostfixOptions{MainCF: "transport_maps = texthash:" + table + "\n",
		Aliases: "postmaster: root\nroot: /dev/null\nsender: /dev/null\n"}
	// full@ is over quota: Dovecot takes it at RCPT and refuses the
	// message for it alone after DATA.
	rcpts := []string{"a@unix.example", "full@unix.example", "nobody@unix.example", "b@unix.example",
		"a@inet.example", "full@inet.example", "nobody@inet.example", "b@inet.example"}
	_, port, _ := net.SplitHostPort(d.Addr)
	norm := strings.NewReplacer(d.Socket, "SOCKET", ":"+port, ":PORT")
	// Dovecot's reply holds its session id, and the recipient's index
	// after the first: <a@unix.example> cCF5MXQpCWvjcwAAg+zDdQ Saved,
	// <b@unix.example> cCF5MXQpCWvjcwAAg+zDdQ:R2 Saved.
	session := regexp.MustCompile(`(<[^<>@]+@[\w.]+>) [\w+/]{22}(:R\d+)? Saved`)
	shapes, saved := map[string][]string{}, map[string]string{}
	for n, system := range []string{"postfix", "postdove"} {
		var inst *oracle.Instance
		if system == "postfix" {
			inst = oracle.StartPostfix(t, opt)
		} else {
			inst = oracle.StartPostdove(t, opt)
		}
		before, _ := os.ReadFile(d.Log)
		subject := "lmtp via " + system
		res := oracle.RunLimit(inst.Sendmail(append([]string{"-i", "-f", "sender@mail.example.test"}, rcpts...)...),
			"Subject: "+subject+"\n\nbody\n.starts with a dot\n..two dots\n.\nend\n", 20*time.Second)
		if res.Code != 0 {
			t.Fatalf("%s sendmail: %d %s", system, res.Code, res.Stderr)
		}
		done := func() bool {
			l := inst.ReadMaillog()
			return strings.Count(l, "status=sent") >= 4 && strings.Count(l, "status=bounced") >= 4
		}
		if !waitFor(done) {
			dlog, _ := os.ReadFile(d.Log)
			t.Fatalf("%s: not delivered; maillog:\n%s\nDovecot's log:\n%s", system, inst.ReadMaillog(), dlog)
		}
		log := inst.ReadMaillog()
		var shape []string
		for _, l := range smtpLogShape(log, "-") {
			l = norm.Replace(l)
			shape = append(shape, session.ReplaceAllString(l, "$1 SESSION$2 Saved"))
		}
		sort.Strings(shape)
		shapes[system] = shape
		for _, want := range []string{
			// Postfix names a unix-domain LMTP server after myhostname.
			"to=<a@unix.example>, relay=mail.example.test[" + d.Socket + "]",
			"to=<a@inet.example>, relay=127.0.0.1[127.0.0.1]:" + port,
			"status=sent (250 2.0.0 <a@unix.example> ",
			"status=bounced (host mail.example.test[" + d.Socket + "] said: 550 5.1.1 <nobody@unix.example> User doesn't exist: nobody@unix.example (in reply to RCPT TO command))",
			"status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <nobody@inet.example> User doesn't exist: nobody@inet.example (in reply to RCPT TO command))",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("%s maillog lacks %q:\n%s", system, want, log)
			}
		}
		if !regexp.MustCompile(`postfix/lmtp\[\d+\]: [0-9A-F]+: to=<b@inet.example>, relay=127.0.0.1\[127.0.0.1\]:\d+, delay=[\d.]+, delays=[\d./]+, dsn=2.0.0, status=sent \(250 2.0.0 <b@inet.example> \S+ Saved\)`).MatchString(log) {
			t.Errorf("%s: no lmtp status=sent line for b@inet.example:\n%s", system, log)
		}
		for _, u := range known {
			msgs := d.maildirMessages(u)
			if len(msgs) != n+1 {
				t.Errorf("%s: %s's Maildir holds %d messages, want %d", system, u, len(msgs), n+1)
			}
			for _, m := range msgs {
				if strings.Contains(m, "Subject: "+subject) {
					saved[system+" "+u] = sinkShape(strings.ReplaceAll(m, subject, "SUBJECT"))
				}
			}
			if m := saved[system+" "+u]; !strings.Contains(m, "\nbody\n.starts with a dot\n..two dots\n.\nend") {
				t.Errorf("%s: %s's Maildir lacks the message %q (intact):\n%s", system, u, subject, m)
			}
		}
		// One LMTP session for each destination, each with one
		// transaction: one session id in Dovecot's replies per domain.
		after, _ := os.ReadFile(d.Log)
		dlog := string(after[len(before):])
		if c := strings.Count(dlog, "Connect from"); c != 2 {
			t.Errorf("%s: %d LMTP connections, want 2; Dovecot's log:\n%s", system, c, dlog)
		}
		for _, dom := range []string{"unix.example", "inet.example"} {
			ids := map[string]bool{}
			for _, m := range regexp.MustCompile(`to=<[ab]@`+regexp.QuoteMeta(dom)+`>.*status=sent \(250 2.0.0 <[^>]+> ([\w+/]+)(:R\d+)? Saved\)`).FindAllStringSubmatch(log, -1) {
				ids[m[1]] = true
			}
			if len(ids) != 1 {
				t.Errorf("%s: %s: %d LMTP sessions in the replies, want 1:\n%s", system, dom, len(ids), log)
			}
		}
		inst.Stop()
		// With no more mail waiting, each session ended with QUIT
		// ("Logged out") before the mail system stopped, not cut off
		// (Dovecot says "Connection closed").
		var disc []string
		waitFor(func() bool {
			after, _ := os.ReadFile(d.Log)
			disc = regexp.MustCompile(`Disconnect from [^:]*: [^(]*`).FindAllString(string(after[len(before):]), -1)
			return len(disc) >= 2
		})
		quits := 0
		for _, l := range disc {
			if strings.HasSuffix(l, ": Logged out ") {
				quits++
			}
		}
		if len(disc) != 2 || quits != 2 {
			t.Errorf("%s: Dovecot's disconnects %q, want two, each Logged out", system, disc)
		}
	}
	if got, want := strings.Join(shapes["postdove"], "\n"), strings.Join(shapes["postfix"], "\n"); got != want {
		t.Errorf("lmtp log lines:\npostdove:\n%s\npostfix:\n%s", got, want)
	}
	// What Dovecot saved (its Return-Path and Delivered-To, the headers
	// and body it got) is the same but for ids and dates.
	for _, u := range known {
		if got, want := saved["postdove "+u], saved["postfix "+u]; got != want {
			t.Errorf("%s's message:\npostdove:\n%s\npostfix:\n%s", u, got, want)
		}
	}
}
