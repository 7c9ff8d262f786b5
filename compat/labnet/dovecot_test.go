package labnet

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The lab's test user on vm3 (lab 4b Inv. 3: "a new account on your vm3
// machine using only your first name") and the password given to passwd.
const (
	firstname = "firstname"
	firstPass = "Lab4b-pass"
)

// lab4b brings the lab to the state lab 4b's Investigation 2 leaves it
// in, with the lab's own edits: myorigin = $mydomain on both machines;
// on vm3 inet_interfaces = all, $mydomain in mydestination, mynetworks =
// the lab's subnet, mailbox_command = dovecot-lda and mail_location =
// maildir:~/Maildir in 10-mail.conf; on vm2 inet_interfaces = all (so
// host's Thunderbird can send through it) and relayhost = vm3.DOMAIN; the
// MX record for DOMAIN on host points to vm3. Postfix runs on both, and
// vm3 has the user firstname, with a password set by passwd.
func lab4b(t *testing.T) (lab *Lab, host, vm2, vm3 *Host) {
	t.Helper()
	lab = New(t)
	host, vm2, vm3 = lab.Host("host"), lab.Host("vm2"), lab.Host("vm3")
	lab.AddRecord(t, Domain, "@ IN MX 10 vm3")
	vm3.Must(t, `sed -i -e 's/^#myorigin = \$mydomain/myorigin = $mydomain/' \
		-e 's/^inet_interfaces = localhost/inet_interfaces = all/' \
		-e 's/^mydestination = .*/mydestination = $mydomain, $myhostname, localhost.$mydomain, localhost/' \
		-e 's|^#mynetworks = 192.168.X.0/24|mynetworks = `+LabSubnet+`|' \
		-e 's|^#mailbox_command = /some/where/procmail$|&\nmailbox_command = /usr/libexec/dovecot/dovecot-lda -f "$SENDER" -a "$RECIPIENT"|' \
		/etc/postfix/main.cf
sed -i 's|^#mail_location =$|mail_location = maildir:~/Maildir|' /etc/dovecot/conf.d/10-mail.conf
systemctl start postfix && systemctl enable postfix`)
	vm2.Must(t, `sed -i -e 's/^#myorigin = \$mydomain/myorigin = $mydomain/' \
		-e 's/^inet_interfaces = localhost/inet_interfaces = all/' \
		-e 's/^#relayhost = vm3.yoursenecaid.ops/relayhost = vm3.`+Domain+`/' /etc/postfix/main.cf
systemctl start postfix && systemctl enable postfix`)
	if got := vm3.Must(t, "postconf -h mydestination mailbox_command mynetworks && doveconf -h mail_location"); got !=
		"$mydomain, $myhostname, localhost.$mydomain, localhost\n/usr/libexec/dovecot/dovecot-lda -f \"$SENDER\" -a \"$RECIPIENT\"\n"+LabSubnet+"\nmaildir:~/Maildir\n" {
		t.Fatalf("vm3 after the lab's edits:\n%s", got)
	}
	if got := vm2.Must(t, "postconf -h relayhost myorigin"); got != "vm3."+Domain+"\n$mydomain\n" {
		t.Fatalf("vm2 after the lab's edits:\n%s", got)
	}
	// CentOS's passwd --stdin is not Debian's; passwd reads the new
	// password twice from a pipe all the same.
	vm3.Must(t, "useradd -m "+firstname+" && printf '%s\\n%s\\n' "+firstPass+" "+firstPass+" | passwd "+firstname)
	return lab, host, vm2, vm3
}

// startDovecot is Inv. 3's steps 1 and 2 on vm3: protocols = imap in
// dovecot.conf, then systemctl start and enable dovecot.
func startDovecot(t *testing.T, vm3 *Host) {
	t.Helper()
	vm3.Must(t, `sed -i 's/^#protocols = imap pop3 lmtp/protocols = imap/' /etc/dovecot/dovecot.conf
systemctl start dovecot && systemctl enable dovecot`)
	if got := vm3.Must(t, "doveconf -h protocols"); got != "imap\n" {
		t.Fatalf("protocols after the edit: %q", got)
	}
}

// allowPlaintext is Inv. 3's steps 6 to 8: disable_plaintext_auth = no
// in 10-auth.conf, ssl = yes in 10-ssl.conf, and a restart.
func allowPlaintext(t *testing.T, vm3 *Host) {
	t.Helper()
	vm3.Must(t, `sed -i 's/^#disable_plaintext_auth = yes/disable_plaintext_auth = no/' /etc/dovecot/conf.d/10-auth.conf
sed -i 's/^ssl = required/ssl = yes/' /etc/dovecot/conf.d/10-ssl.conf
systemctl restart dovecot`)
	if got := vm3.Must(t, "doveconf -h disable_plaintext_auth ssl"); got != "no\nyes\n" {
		t.Fatalf("after the edits: %q", got)
	}
}

// mailFirstname sends a message to firstname@DOMAIN through vm2's SMTP
// server from host, as host's Thunderbird does, and waits until vm3's
// dovecot-lda has saved it in /home/firstname/Maildir/new.
func mailFirstname(t *testing.T, host, vm3 *Host, subject, body string) {
	t.Helper()
	deliverFirstname(t, host, vm3, "lda", subject, body)
}

// deliverFirstname is mailFirstname for a delivery by agent: "lda"
// (dovecot-lda, the mailbox_command) or "lmtp" (mailbox_transport).
func deliverFirstname(t *testing.T, host, vm3 *Host, agent, subject, body string) {
	t.Helper()
	sendFirstname(t, host, subject, body)
	vm3.WaitLog(t, "dovecot: "+agent+"("+firstname+")", "saved mail to INBOX")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := vm3.Must(t, "grep -l -F -- '"+body+"' /home/"+firstname+"/Maildir/new/* 2>/dev/null || true")
		if out != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message with %q in /home/%s/Maildir/new:\n%s", body, firstname, vm3.Run("ls -la /home/"+firstname+"/Maildir/new").Stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sendFirstname sends a message to firstname@DOMAIN through vm2's SMTP
// server from host, as host's Thunderbird does.
func sendFirstname(t *testing.T, host *Host, subject, body string) {
	t.Helper()
	host.Must(t, py(`import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"], m["To"], m["Subject"] = "student@`+Domain+`", "`+firstname+`@`+Domain+`", "`+subject+`"
m.set_content("`+body+`")
with smtplib.SMTP("vm2.`+Domain+`", 25, local_hostname="host.`+Domain+`", timeout=20) as s:
    s.send_message(m)
`))
}

// py is a shell command that runs a Python 3 program given inline.
func py(program string) string {
	return "python3 -u - <<'PYEOF'\n" + program + "PYEOF\n"
}

// TestLab4bInv3 replays lab 4b's Investigation 3 on vm3 verbatim:
// protocols = imap, dovecot started and enabled, ss shows the IMAP
// listeners, nc from host gets Dovecot's greeting; with the stock
// 10-auth.conf and 10-ssl.conf a plaintext LOGIN from host is refused;
// after disable_plaintext_auth = no, ssl = yes and a restart it succeeds;
// mail through vm2 to firstname@DOMAIN lands in /home/firstname/Maildir/new
// and is read over IMAP; the maillog has Dovecot's Login and Logged out
// lines.
func TestLab4bInv3(t *testing.T) {
	lab, host, vm2, vm3 := lab4b(t)
	if st, err := vm3.ReadFile("/etc/pki/dovecot/certs/dovecot.pem"); err != nil || !strings.HasPrefix(string(st), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("make install left no certificate at /etc/pki/dovecot/certs/dovecot.pem (%v)", err)
	}
	if got := vm3.Must(t, "stat -c '%a %U' /etc/pki/dovecot/private/dovecot.pem"); got != "600 root\n" {
		t.Errorf("the key make install made: %q", got)
	}
	startDovecot(t, vm3)
	if st := vm3.Must(t, "systemctl status dovecot"); !strings.Contains(st, "Active: active (running)") {
		t.Errorf("systemctl status dovecot:\n%s", st)
	}
	if out := vm3.Must(t, "systemctl is-enabled dovecot"); out != "enabled\n" {
		t.Errorf("is-enabled: %q", out)
	}
	// The stock config: listen = *, :: and ssl = required with the
	// certificate make install made: imap on 143 and imaps on 993.
	ss := vm3.Must(t, "ss -ltnp")
	for _, port := range []string{"143", "993"} {
		if !regexp.MustCompile(`(?m)^LISTEN .* (0\.0\.0\.0|\*):` + port + ` .*users:\(\("dovecot",pid=\d+`).MatchString(ss) {
			t.Errorf("ss -ltnp shows no dovecot on *:%s:\n%s", port, ss)
		}
	}
	if strings.Contains(ss, ":110 ") || strings.Contains(ss, ":995 ") {
		t.Errorf("pop3 listens with protocols = imap:\n%s", ss)
	}

	// Step 3: nc on host.
	greeting := host.Must(t, "nc -w 3 vm3 143 </dev/null")
	if !regexp.MustCompile(`^\* OK \[CAPABILITY IMAP4rev1 [^\]]*\] Dovecot ready\.\r\n`).MatchString(greeting) {
		t.Errorf("nc vm3 143 from host: %q", greeting)
	}
	// The stock 10-auth.conf and 10-ssl.conf: host is not local, so
	// the greeting says LOGINDISABLED, offers STARTTLS and no AUTH=, and
	// LOGIN is refused.
	for _, want := range []string{" STARTTLS", " LOGINDISABLED"} {
		if !strings.Contains(greeting, want) {
			t.Errorf("greeting to host lacks %s: %q", want, greeting)
		}
	}
	if strings.Contains(greeting, "AUTH=PLAIN") {
		t.Errorf("greeting to host offers AUTH=PLAIN without TLS: %q", greeting)
	}
	refused := host.Must(t, "{ sleep 0.5; printf 'a1 LOGIN "+firstname+" "+firstPass+"\\r\\n'; sleep 1; printf 'a2 LOGOUT\\r\\n'; sleep 0.5; } | nc -w 5 vm3 143")
	if !strings.Contains(refused, "\r\na1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n") {
		t.Errorf("plaintext LOGIN from host with the stock config:\n%s", refused)
	}
	// Dovecot 2.3's wording (the oracle's): the refused LOGIN counts as
	// a failed attempt by the user it named.
	vm3.WaitLog(t, "imap-login: Disconnected: Aborted login by logging out (auth failed, 1 attempts in ", "user=<"+firstname+">, rip="+lab.Addr("host")+", lip="+lab.Addr("vm3"))

	// Steps 6 to 8.
	allowPlaintext(t, vm3)
	greeting = host.Must(t, "nc -w 3 vm3 143 </dev/null")
	if strings.Contains(greeting, "LOGINDISABLED") || !strings.Contains(greeting, "AUTH=PLAIN") || !strings.Contains(greeting, "STARTTLS") {
		t.Errorf("greeting to host after the edits: %q", greeting)
	}

	// Sending a mail message: through vm2 to firstname@DOMAIN, into
	// /home/firstname/Maildir/new on vm3.
	mailFirstname(t, host, vm3, "Lab4b - Inv3", "hello-firstname-over-imap")
	vm2.WaitLog(t, "postfix/smtp[", "to=<"+firstname+"@"+Domain+">", "relay=vm3."+Domain+"["+lab.Addr("vm3")+"]:25", "status=sent")
	out := host.Must(t, py(`import imaplib
c = imaplib.IMAP4("vm3.`+Domain+`", 143, timeout=20)
print(c.login("`+firstname+`", "`+firstPass+`")[0])
typ, d = c.select("INBOX")
print(typ, d[0].decode())
typ, d = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
print(d[0][1].decode().strip())
print(d[1][1].decode().strip())
c.logout()
`))
	if want := "OK\nOK 1\nSubject: Lab4b - Inv3\nhello-firstname-over-imap\n"; out != want {
		t.Errorf("IMAP from host:\n%s\nwant\n%s", out, want)
	}

	// The maillog, through vm3's rsyslogd.
	login := vm3.WaitLog(t, "dovecot: imap-login: Login: user=<"+firstname+">")
	m := regexp.MustCompile(`^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d vm3 dovecot: imap-login: Login: user=<` + firstname + `>, method=PLAIN, rip=` +
		regexp.QuoteMeta(lab.Addr("host")) + `, lip=` + regexp.QuoteMeta(lab.Addr("vm3")) + `, mpid=(\d+), session=<([A-Za-z0-9+/]{16})>$`).FindStringSubmatch(login)
	if m == nil {
		t.Fatalf("the Login line:\n%s", login)
	}
	out2 := vm3.WaitLog(t, "dovecot: imap("+firstname+")<"+m[1]+"><"+m[2]+">: Disconnected: Logged out ")
	if !regexp.MustCompile(`: Disconnected: Logged out in=\d+ out=\d+ deleted=0 expunged=0 trashed=0 hdr_count=\d+ hdr_bytes=\d+ body_count=\d+ body_bytes=\d+$`).MatchString(out2) {
		t.Errorf("the Logged out line:\n%s", out2)
	}
}

// thunderbird is Thunderbird's opening sequence on vm3's IMAP server,
// as its IMAP log shows it, in Python's imaplib: CAPABILITY, LOGIN, the
// post-login CAPABILITY, NAMESPACE, LIST with SPECIAL-USE, LSUB, SELECT
// INBOX, UID FETCH 1:* (FLAGS), then the headers and the body of each
// message. Then what it does on first use: it creates Trash and
// subscribes to it, and saves a sent message in Sent (creating it after
// APPEND's TRYCREATE). Last it selects INBOX again and IDLEs, printing
// IDLING when the server has accepted IDLE and the EXISTS it reports.
// Each result is one line "WHAT: value".
const thunderbird = `import imaplib, time
c = imaplib.IMAP4("vm3.` + Domain + `", 143, timeout=30)
def out(what, *v): print(what + ":", *v, flush=True)
def lines(d): return " | ".join(x.decode() if isinstance(x, bytes) else repr(x) for x in d if x is not None)
def raw(name, *args):
    typ, dat = c._simple_command(name, *args)
    return typ + " " + lines(c._untagged_response(typ, dat, name)[1])
out("GREETING", c.welcome.decode())
out("CAPABILITY", lines(c.capability()[1]))
out("LOGIN", c.login("` + firstname + `", "` + firstPass + `")[0])
out("CAPABILITY2", lines(c.capability()[1]))
out("NAMESPACE", lines(c.namespace()[1]))
out("LIST", raw("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)"))
out("LSUB", raw("LSUB", '""', '"*"'))
typ, d = c.select("INBOX")
out("SELECT", typ, lines(d))
typ, d = c.uid("FETCH", "1:*", "(FLAGS)")
out("FLAGS", typ, lines(d))
for uid in c.uid("SEARCH", "ALL")[1][0].split():
    typ, d = c.uid("FETCH", uid, "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])")
    out("HEADERS", typ, repr(d[0][1].decode()))
    typ, d = c.uid("FETCH", uid, "(UID RFC822.SIZE BODY.PEEK[])")
    out("BODY", typ, repr(d[0][1].decode()))
out("CREATE", lines(c.create("Trash")[1]), c.subscribe("Trash")[0])
out("LIST2", raw("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)"))
out("LSUB2", raw("LSUB", '""', '"*"'))
sent = b"From: firstname@` + Domain + `\r\nTo: root@` + Domain + `\r\nSubject: sent by thunderbird\r\n\r\nin Sent\r\n"
typ, d = c.append("Sent", r"(\Seen)", imaplib.Time2Internaldate(time.time()), sent)
out("APPEND", typ, lines(d))
if typ == "NO":
    c.create("Sent"); c.subscribe("Sent")
    typ, d = c.append("Sent", r"(\Seen)", imaplib.Time2Internaldate(time.time()), sent)
    out("APPEND2", typ, lines(d))
out("STATUS", lines(c.status("Sent", "(MESSAGES UNSEEN)")[1]))
out("LIST3", raw("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)"))
typ, d = c.select("INBOX")
c.send(b"I1 IDLE\r\n")
out("IDLE", c.readline().decode().strip())
out("IDLING", "")
while True:
    l = c.readline().decode().strip()
    if l.endswith(" EXISTS"):
        out("EXISTS", l)
        break
c.send(b"DONE\r\n")
out("DONE", c.readline().decode().strip())
c.logout()
out("END", "")
`

// field is the value of the line "WHAT: value" of out, or "".
func field(out, what string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, what+": "); ok {
			return v
		}
	}
	return ""
}

// waitOutput waits up to d for s (the output of a command Start runs)
// to contain want, and tells how long that took.
func waitOutput(t *testing.T, s *SafeBuffer, want string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !strings.Contains(s.String(), want) {
		if time.Since(start) > d {
			t.Fatalf("no %q in %v; the output:\n%s", want, d, s.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestLab4bThunderbird: after Inv. 3's steps, a client replaying
// Thunderbird's opening sequence from host logs in as firstname, reads
// the mail vm2 relayed, finds INBOX then Trash as \Trash once it has
// created it, saves to Sent, and while it IDLEs a second mail sent
// through vm2's SMTP is reported (EXISTS) within a few seconds of
// dovecot-lda saving it.
func TestLab4bThunderbird(t *testing.T) {
	_, host, _, vm3 := lab4b(t)
	startDovecot(t, vm3)
	allowPlaintext(t, vm3)
	mailFirstname(t, host, vm3, "Lab4b - first", "the-first-message")

	var tb SafeBuffer
	host.Start(t, py(thunderbird), &tb)
	waitOutput(t, &tb, "IDLING:", 30*time.Second)
	out := tb.String()
	// What Debian's Dovecot answers to the same commands, but that
	// go-imap quotes every mailbox name but INBOX (Dovecot: only those
	// that need it) and words the completions its own way.
	for _, c := range []struct{ what, want string }{
		{"LOGIN", "OK"},
		{"NAMESPACE", `(("" ".")) NIL NIL`},
		{"LIST", `OK () "." INBOX`},
		{"SELECT", "OK 1"},
		{"FLAGS", "OK 1 (UID 1 FLAGS ())"},
		{"APPEND", "NO [TRYCREATE] Mailbox doesn't exist: Sent"},
		{"STATUS", `"Sent" (MESSAGES 1 UNSEEN 0)`},
		{"IDLE", "+ idling"},
	} {
		if got := field(out, c.what); got != c.want {
			t.Errorf("%s: %q, want %q", c.what, got, c.want)
		}
	}
	for _, c := range []struct{ what, want string }{
		{"GREETING", `^\* OK \[CAPABILITY IMAP4rev1 .*\] Dovecot ready\.$`},
		{"CAPABILITY2", `^IMAP4rev1 .*\bIDLE\b`},
		{"CAPABILITY2", `\bSPECIAL-USE\b`},
		{"CAPABILITY2", `\bLIST-EXTENDED\b`},
		{"LSUB", `^OK $`},
		{"HEADERS", `^OK 'From: student@` + Domain + `\\r\\nTo: ` + firstname + `@` + Domain + `\\r\\nSubject: Lab4b - first\\r\\n`},
		{"BODY", `^OK 'Return-Path: <student@` + Domain + `>\\r\\n.*\\r\\n\\r\\nthe-first-message\\r\\n'$`},
		{"CREATE", `^(CREATE|Create) completed\.? OK$`},
		// Thunderbird shows Trash below INBOX once it exists.
		{"LIST2", `^OK (\(\) "\." INBOX \| \(\\Trash\) "\." "?Trash"?|\(\\Trash\) "\." "?Trash"? \| \(\) "\." INBOX)$`},
		{"LSUB2", `^OK \((\\Subscribed|\\Trash)\) "\." "?Trash"?$`},
		{"APPEND2", `^OK \[APPENDUID \d+ 1\] `},
		{"LIST3", `\(\\Sent\) "\." "?Sent"?`},
	} {
		if got := field(out, c.what); !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("%s: %q does not match %s", c.what, got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("the client's output:\n%s", out)
	}
	sent := vm3.Must(t, "stat -c '%U %a %n' /home/"+firstname+"/Maildir/.Sent/cur/*")
	if !strings.HasPrefix(sent, firstname+" 600 /home/"+firstname+"/Maildir/.Sent/cur/") || !strings.HasSuffix(sent, ":2,S\n") {
		t.Errorf("the message in Sent: %q", sent)
	}

	// The session runs in firstname's mail process, as firstname.
	mpid := regexp.MustCompile(`mpid=(\d+),`).FindStringSubmatch(vm3.WaitLog(t, "imap-login: Login: user=<"+firstname+">"))
	if mpid == nil {
		t.Fatal("no mpid in the Login line")
	}
	if ps := vm3.Must(t, "ps -o user:20=,group:20=,comm= -p "+mpid[1]); strings.Join(strings.Fields(ps), " ") != firstname+" "+firstname+" dovecot" {
		t.Errorf("firstname's mail process: %q", ps)
	}

	// While it IDLEs: the second mail, through vm2.
	mailFirstname(t, host, vm3, "Lab4b - while idling", "the-second-message")
	took := waitOutput(t, &tb, "EXISTS:", 5*time.Second)
	t.Logf("EXISTS %v after the message was in Maildir/new", took.Round(time.Millisecond))
	waitOutput(t, &tb, "END:", 10*time.Second)
	if got := field(tb.String(), "EXISTS"); got != "* 2 EXISTS" {
		t.Errorf("EXISTS: %q", got)
	}
	if got := field(tb.String(), "DONE"); !regexp.MustCompile(`^I1 OK (Idle|IDLE) completed`).MatchString(got) {
		t.Errorf("DONE: %q", got)
	}
}

// TestLab4bMutt: mutt (Debian's) on host reads firstname's mailbox on
// vm3 over IMAP, without encryption as the lab's Thunderbird does, in a
// tmux session: its index shows the subject of the mail vm2 relayed, and
// the message opens.
func TestLab4bMutt(t *testing.T) {
	if err := exec.Command("sh", "-c", "command -v mutt && command -v tmux").Run(); err != nil {
		t.Skip("mutt or tmux is not installed")
	}
	_, host, _, vm3 := lab4b(t)
	startDovecot(t, vm3)
	allowPlaintext(t, vm3)
	mailFirstname(t, host, vm3, "Lab4b - read with mutt", "the-body-mutt-shows")

	if err := host.WriteFile("/root/.muttrc", `set imap_user = "`+firstname+`"
set imap_pass = "`+firstPass+`"
set folder = "imap://vm3.`+Domain+`/"
set spoolfile = "+INBOX"
set ssl_starttls = no
set ssl_force_tls = no
set record = ""
set imap_passive = no
`, 0o600); err != nil {
		t.Fatal(err)
	}
	host.Must(t, "tmux new-session -d -s mutt -x 160 -y 40 mutt")
	t.Cleanup(func() { host.Run("tmux kill-server") })
	screen := func() string { return host.Run("tmux capture-pane -p -t mutt").Stdout }
	waitScreen := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s := screen()
			if strings.Contains(s, want) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("mutt's screen has no %q in 15 s:\n%s", want, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	index := waitScreen("Lab4b - read with mutt")
	if !regexp.MustCompile(`(?m)^\s+1 N .* student@.* Lab4b - read with mutt$`).MatchString(index) ||
		!strings.Contains(index, "Mutt: =INBOX [Msgs:1 New:1 ") {
		t.Errorf("mutt's index:\n%s", index)
	}
	host.Must(t, "tmux send-keys -t mutt Enter")
	waitScreen("the-body-mutt-shows")
	host.Must(t, "tmux send-keys -t mutt q q")
	vm3.WaitLog(t, "dovecot: imap("+firstname+")<", "Disconnected: Logged out ")
	vm3.WaitLog(t, "dovecot: imap-login: Login: user=<"+firstname+">, method=PLAIN, rip="+host.Addrs[0]+", lip="+vm3.Addrs[0])
}

// snoop is alice, logged in from host, trying to reach bob's mail by
// every name Dovecot must refuse; then what she may do with '%' and '*'.
// Each result is one line "WHAT: value".
const snoop = `import imaplib
c = imaplib.IMAP4("vm3.` + Domain + `", 143, timeout=30)
def out(what, *v): print(what + ":", *v, flush=True)
def s(x): return " ".join(y.decode() if isinstance(y, bytes) else str(y) for y in x if y is not None)
def q(n): return '"' + n + '"'
out("LOGIN", c.login("alice", "alice-pass")[0])
for i, n in enumerate(["../bob", "../bob/Maildir", "/home/bob/Maildir", "/home/bob/Maildir/new", "~bob", "~bob/Maildir", "..", ".bob", "INBOX/../../bob"]):
    typ, d = c.select(q(n), readonly=True)
    out("SELECT%d" % i, typ, s(d))
    typ, d = c.status(q(n), "(MESSAGES)")
    out("STATUS%d" % i, typ, s(d))
    typ, d = c.create(q(n))
    out("CREATE%d" % i, typ, s(d))
    typ, d = c.append(q(n), None, None, b"Subject: planted\r\n\r\nx\r\n")
    out("APPEND%d" % i, typ, s(d))
for i, p in enumerate(["*", "../*", "~bob/*", "/home/*", "%/%"]):
    out("LIST%d" % i, s(c.list('""', q(p))[1]))
out("CREATE-STAR", s(c.create(q("star*box"))))
out("CREATE-PCT", s(c.create(q("a%b"))))
out("LIST-STAR", s(c.list('""', q("star*box"))[1]))
typ, d = c.select("INBOX")
out("INBOX", typ, s(d))
typ, d = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out("FETCH", typ, s(x[1] for x in d if isinstance(x, tuple)).replace("\r\n", " "))
c.logout()
`

// TestLab4bIsolation: on vm3, alice logged in over IMAP from host
// cannot select, open the status of, create or append to bob's mail by
// any name (../bob, /home/bob/Maildir, ~bob, ...): each is refused with
// Dovecot's words, and she lists and fetches her own mail only. Her
// session runs as alice. '*' and '%' in a created name stay inside her
// Maildir, as with Dovecot. Ten wrong passwords on one connection take
// at least ten auth_failure_delays, and the maillog says so as Dovecot's
// does.
func TestLab4bIsolation(t *testing.T) {
	lab, host, _, vm3 := lab4b(t)
	startDovecot(t, vm3)
	vm3.Must(t, `sed -i 's/^#auth_failure_delay = 2 secs/auth_failure_delay = 1 secs/' /etc/dovecot/conf.d/10-auth.conf`)
	allowPlaintext(t, vm3)
	for _, u := range []string{"alice", "bob"} {
		vm3.Must(t, "useradd -m "+u+" && printf '%s\\n%s\\n' "+u+"-pass "+u+"-pass | passwd "+u+
			" && echo for-"+u+"-only | mail -s 'secret of "+u+"' "+u)
	}
	for _, u := range []string{"alice", "bob"} {
		vm3.WaitLog(t, "dovecot: lda("+u+")", "saved mail to INBOX")
	}

	out := host.Must(t, py(snoop))
	// Debian's Dovecot's replies to the same names.
	const (
		sep   = "NO [CANNOT] Invalid mailbox name: Begins with hierarchy separator"
		slash = "NO [CANNOT] Invalid mailbox name: Name must not have '/' characters"
		tilde = "NO [CANNOT] Invalid mailbox name: Begins with '~'"
		adj   = "NO [CANNOT] Invalid mailbox name: Has adjacent hierarchy separators"
	)
	refusals := []string{sep, sep, slash, slash, tilde, slash, sep, sep, adj}
	for i, want := range refusals {
		for _, cmd := range []string{"SELECT", "STATUS", "CREATE", "APPEND"} {
			what := fmt.Sprintf("%s%d", cmd, i)
			if got := field(out, what); got != want {
				t.Errorf("%s: %q, want %q", what, got, want)
			}
		}
	}
	for i := 1; i < 5; i++ {
		if got := field(out, fmt.Sprintf("LIST%d", i)); got != "" {
			t.Errorf("LIST%d: %q, want nothing", i, got)
		}
	}
	if got := field(out, "LIST0"); got != `(\HasNoChildren) "." INBOX` {
		t.Errorf("alice's LIST \"\" \"*\": %q", got)
	}
	for _, what := range []string{"CREATE-STAR", "CREATE-PCT"} {
		if got := field(out, what); !strings.HasPrefix(got, "OK ") {
			t.Errorf("%s: %q (Dovecot creates it)", what, got)
		}
	}
	if got := field(out, "LIST-STAR"); !strings.Contains(got, `"star*box"`) {
		t.Errorf("LIST-STAR: %q", got)
	}
	if got := field(out, "FETCH"); got != "OK Subject: secret of alice  " {
		t.Errorf("alice's FETCH: %q", got)
	}
	if t.Failed() {
		t.Logf("alice's session:\n%s", out)
	}
	// Nothing was planted anywhere, and the '*' and '%' folders are
	// alice's, in her Maildir.
	if got := vm3.Must(t, "find /home -newer /home/bob/Maildir/new -path '*planted*' -o -name '*bob*' -newer /home/bob/Maildir/new -print; ls -d /home/alice/Maildir/.star*box /home/alice/Maildir/.a%b"); got != "/home/alice/Maildir/.a%b\n/home/alice/Maildir/.star*box\n" {
		t.Errorf("after alice's session, on vm3:\n%s", got)
	}
	if got := vm3.Must(t, "grep -rl planted /home || true"); got != "" {
		t.Errorf("alice planted mail:\n%s", got)
	}
	// Her session ran as her: the mail process named in the Login line.
	login := vm3.WaitLog(t, "imap-login: Login: user=<alice>")
	mpid := regexp.MustCompile(`mpid=(\d+)`).FindStringSubmatch(login)
	if mpid == nil {
		t.Fatalf("Login line without mpid: %s", login)
	}
	vm3.WaitLog(t, "imap(alice)<"+mpid[1]+">")
	// bob still reads his own.
	if got := host.Must(t, py(`import imaplib
c = imaplib.IMAP4("vm3.`+Domain+`", 143, timeout=30)
c.login("bob", "bob-pass")
print(c.select("INBOX", readonly=True)[1][0].decode(), c.fetch("1", "(BODY.PEEK[TEXT])")[1][0][1].decode().strip())
c.logout()
`)); got != "1 for-bob-only\n" {
		t.Errorf("bob's INBOX: %q", got)
	}

	// Ten wrong passwords on one connection.
	slow := host.Must(t, py(`import imaplib, time
c = imaplib.IMAP4("vm3.`+Domain+`", 143, timeout=60)
start, no = time.time(), 0
for i in range(10):
    try:
        c.login("alice", "wrong-%d" % i)
    except imaplib.IMAP4.error as e:
        no += 1
        last = str(e)
print("%.3f %d %s" % (time.time() - start, no, last))
c.shutdown()
`))
	var took float64
	var failed int
	f := strings.SplitN(slow, " ", 3)
	if n, _ := fmt.Sscanf(slow, "%g %d", &took, &failed); n != 2 || len(f) != 3 {
		t.Fatalf("ten wrong passwords: %q", slow)
	}
	last := f[2]
	const delay, slack = 1.0, 0.5
	if failed != 10 || took < 10*delay-slack || !strings.Contains(last, "[AUTHENTICATIONFAILED] Authentication failed.") {
		t.Errorf("ten wrong passwords: %d refused in %.3f s (auth_failure_delay = %v s): %s", failed, took, delay, last)
	}
	t.Logf("ten wrong passwords took %.3f s with auth_failure_delay = 1 secs", took)
	// pam_unix adds its own delay of about 2 s to each failure, as it
	// does under Dovecot.
	line := vm3.WaitLog(t, "imap-login: Disconnected: ", " (auth failed, 10 attempts in ")
	m := regexp.MustCompile(`dovecot: imap-login: Disconnected: [A-Za-z ]+ \(auth failed, 10 attempts in (\d+) secs\): user=<alice>, method=PLAIN, rip=` +
		regexp.QuoteMeta(lab.Addr("host")) + `, lip=` + regexp.QuoteMeta(lab.Addr("vm3")) + `, session=<[A-Za-z0-9+/]{16}>$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("the maillog's line for the ten failures:\n%s", line)
	}
	if secs, _ := strconv.Atoi(m[1]); float64(secs) < took-1 {
		t.Errorf("the maillog's line for the ten failures (they took %.1f s):\n%s", took, line)
	}
}
