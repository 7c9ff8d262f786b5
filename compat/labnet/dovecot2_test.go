package labnet

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// popSession is a POP3 session of firstname's on vm3 in Python's
// poplib, from host: over 110 in plaintext, or with ssl over 995 with
// the certificate make install made, unverified as a client told to
// accept it does. It prints STAT, LIST, UIDL and each message, deletes
// the message whose body has del (if any) and QUITs. Each result is one
// line "WHAT: value".
func popSession(ssl bool, del string) string {
	open := `poplib.POP3("vm3.` + Domain + `", 110, timeout=20)`
	if ssl {
		open = `poplib.POP3_SSL("vm3.` + Domain + `", 995, timeout=20, context=ctx)`
	}
	return py(`import poplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
def out(what, *v): print(what + ":", *v, flush=True)
p = ` + open + `
out("WELCOME", p.getwelcome().decode())
out("USER", p.user("` + firstname + `").decode())
out("PASS", p.pass_("` + firstPass + `").decode())
count, size = p.stat()
out("STAT", count, size)
out("LIST", " ".join(x.decode() for x in p.list()[1]))
out("UIDL", " ".join(x.decode() for x in p.uidl()[1]))
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    text = b"\n".join(lines).decode()
    out("RETR%d" % i, resp.decode(), repr(text))
    if "` + del + `" and "` + del + `" in text:
        out("DELE", p.dele(i).decode())
out("QUIT", p.quit().decode())
`)
}

// TestLab4bPOP3 is the later lab's step after Inv. 3: protocols = imap
// pop3 in dovecot.conf and a restart. ss shows pop3 on 110 and 995;
// Python's poplib on host logs in as firstname over 110, lists, UIDLs
// (Dovecot's default format, from the Maildir's UIDs and UIDVALIDITY) and
// retrieves the two mails that came through vm2's SMTP, deletes one and
// QUITs; a second session, POP3_SSL on 995, sees the other only. vm3's
// maillog has pop3-login's Login lines and pop3's Logged out line with
// pop3_logout_format's counts.
func TestLab4bPOP3(t *testing.T) {
	lab, host, _, vm3 := lab4b(t)
	startDovecot(t, vm3)
	allowPlaintext(t, vm3)
	mailFirstname(t, host, vm3, "Lab4b - pop one", "first-over-pop3")
	mailFirstname(t, host, vm3, "Lab4b - pop two", "second-over-pop3")

	vm3.Must(t, `sed -i 's/^protocols = imap$/protocols = imap pop3/' /etc/dovecot/dovecot.conf
systemctl restart dovecot`)
	if got := vm3.Must(t, "doveconf -h protocols"); got != "imap pop3\n" {
		t.Fatalf("protocols after the edit: %q", got)
	}
	ss := vm3.Must(t, "ss -ltnp")
	for _, port := range []string{"110", "995", "143", "993"} {
		if !regexp.MustCompile(`(?m)^LISTEN .* (0\.0\.0\.0|\*):` + port + ` .*users:\(\("dovecot",pid=\d+`).MatchString(ss) {
			t.Errorf("ss -ltnp shows no dovecot on *:%s:\n%s", port, ss)
		}
	}

	out := host.Must(t, popSession(false, "first-over-pop3"))
	if t.Failed() {
		t.Logf("the POP3 session:\n%s", out)
	}
	for _, c := range []struct{ what, want string }{
		{"WELCOME", `^\+OK Dovecot ready\.$`},
		{"USER", `^\+OK$`},
		{"PASS", `^\+OK Logged in\.$`},
		{"STAT", `^2 \d+$`},
		{"LIST", `^1 \d+ 2 \d+$`},
		{"UIDL", `^1 [0-9a-f]{16} 2 [0-9a-f]{16}$`},
		{"RETR1", `^\+OK \d+ octets 'Return-Path: <student@` + Domain + `>\\n.*\\nSubject: Lab4b - pop one\\n.*\\n\\nfirst-over-pop3'$`},
		{"RETR2", `\\nSubject: Lab4b - pop two\\n.*\\n\\nsecond-over-pop3'$`},
		{"DELE", `^\+OK Marked to be deleted\.$`},
		{"QUIT", `^\+OK Logging out, messages deleted\.$`},
	} {
		if got := field(out, c.what); !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("%s: %q does not match %s", c.what, got, c.want)
		}
	}
	// LIST's sizes are RETR's octets, and STAT's their sum.
	list := strings.Fields(field(out, "LIST"))
	var sizes [2]int
	for i := range sizes {
		sizes[i], _ = strconv.Atoi(list[2*i+1])
		if got := field(out, fmt.Sprintf("RETR%d", i+1)); !strings.HasPrefix(got, fmt.Sprintf("+OK %d octets ", sizes[i])) {
			t.Errorf("RETR%d: %q, LIST said %d octets", i+1, got, sizes[i])
		}
	}
	if got, want := field(out, "STAT"), fmt.Sprintf("2 %d", sizes[0]+sizes[1]); got != want {
		t.Errorf("STAT: %q, want %q", got, want)
	}
	// Dovecot's pop3_uidl_format %08Xu%08Xv: the Maildir's UID, then its
	// UIDVALIDITY, in hex (var_expand's X writes lower case).
	uidlist := vm3.Must(t, "head -1 /home/"+firstname+"/Maildir/dovecot-uidlist")
	v := regexp.MustCompile(`^3 V(\d+) `).FindStringSubmatch(uidlist)
	if v == nil {
		t.Fatalf("dovecot-uidlist: %q", uidlist)
	}
	validity, _ := strconv.ParseUint(v[1], 10, 32)
	uidl := fmt.Sprintf("1 %08x%08x 2 %08x%08x", 1, validity, 2, validity)
	if got := field(out, "UIDL"); got != uidl {
		t.Errorf("UIDL: %q, want %q", got, uidl)
	}
	// The deleted message is gone from the Maildir.
	if got := vm3.Must(t, "grep -rl -e first-over-pop3 -e second-over-pop3 /home/"+firstname+"/Maildir | sed 's|.*/||; s|[.].*||' | wc -l"); got != "1\n" {
		t.Errorf("messages left in the Maildir: %s", got)
	}

	// The second session, over TLS on 995.
	out2 := host.Must(t, popSession(true, ""))
	if got, want := field(out2, "UIDL"), "1 "+strings.Fields(uidl)[3]; got != want {
		t.Errorf("UIDL after the DELE: %q, want %q", got, want)
	}
	if got := field(out2, "STAT"); got != fmt.Sprintf("1 %d", sizes[1]) {
		t.Errorf("STAT after the DELE: %q", got)
	}
	if got := field(out2, "RETR1"); !strings.HasSuffix(got, `\n\nsecond-over-pop3'`) {
		t.Errorf("RETR 1 after the DELE: %q", got)
	}
	if got := field(out2, "QUIT"); got != "+OK Logging out." {
		t.Errorf("QUIT: %q", got)
	}
	if t.Failed() {
		t.Logf("the POP3 session over 995:\n%s", out2)
	}

	// The maillog.
	// Dovecot counts RETR's bytes from its +OK line to the body's end.
	retr := func(i int) int { return len(fmt.Sprintf("+OK %d octets\r\n", sizes[i])) + sizes[i] }
	fields := `method=PLAIN, rip=` + regexp.QuoteMeta(lab.Addr("host")) + `, lip=` + regexp.QuoteMeta(lab.Addr("vm3")) + `, mpid=(\d+), `
	for _, c := range []struct{ tls, logout string }{
		{"", fmt.Sprintf("top=0/0, retr=2/%d, del=1/2, size=%d", retr(0)+retr(1), sizes[0]+sizes[1])},
		{"TLS, ", fmt.Sprintf("top=0/0, retr=1/%d, del=0/1, size=%d", retr(1), sizes[1])},
	} {
		login := vm3.WaitLog(t, "dovecot: pop3-login: Login: user=<"+firstname+">", ", "+c.tls+"session=<")
		m := regexp.MustCompile(`^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d vm3 dovecot: pop3-login: Login: user=<` + firstname + `>, ` +
			fields + c.tls + `session=<([A-Za-z0-9+/]{16})>$`).FindStringSubmatch(login)
		if m == nil {
			t.Errorf("pop3-login's Login line:\n%s", login)
			continue
		}
		if got := vm3.WaitLog(t, "dovecot: pop3("+firstname+")<"+m[1]+"><"+m[2]+">: Disconnected: Logged out "); !strings.HasSuffix(got, ": Disconnected: Logged out "+c.logout) {
			t.Errorf("pop3's Logged out line:\n%s\nwant it to end %q", got, c.logout)
		}
	}
}

// TestLab4bLMTP hands vm3's local mail to Dovecot over LMTP instead of
// dovecot-lda, as Dovecot's "LMTP with Postfix" setup does: in
// 10-master.conf the stock service lmtp's unix_listener becomes
// /var/spool/postfix/private/dovecot-lmtp (mode 0600, user and group
// postfix), protocols = imap lmtp, and main.cf's mailbox_command gives
// way to mailbox_transport = lmtp:unix:private/dovecot-lmtp. With the
// stock auth_username_format = %Lu, Dovecot looks the system user up by
// the whole address Postfix's lmtp client gives and refuses it (550 5.1.1
// User doesn't exist); Dovecot's documentation says to set %Ln for
// system users, and after that the mail from vm2 lands in
// /home/firstname/Maildir/new, owned by firstname.
func TestLab4bLMTP(t *testing.T) {
	_, host, _, vm3 := lab4b(t)
	vm3.Must(t, `sed -i -e '/^service lmtp {/,/^}/{' \
		-e 's|unix_listener lmtp {|unix_listener /var/spool/postfix/private/dovecot-lmtp {|' \
		-e 's|#mode = 0666|mode = 0600\n    user = postfix\n    group = postfix|' -e '}' /etc/dovecot/conf.d/10-master.conf
sed -i 's/^#protocols = imap pop3 lmtp/protocols = imap lmtp/' /etc/dovecot/dovecot.conf
systemctl start dovecot && systemctl enable dovecot
sed -i -e 's|^mailbox_command = |#&|' \
	-e 's|^#mailbox_transport = lmtp:unix:/var/lib/imap/socket/lmtp$|&\nmailbox_transport = lmtp:unix:private/dovecot-lmtp|' /etc/postfix/main.cf`)
	reload(t, vm3)
	if got := vm3.Must(t, "postconf -h mailbox_command mailbox_transport; doveconf -h protocols"); got != "\nlmtp:unix:private/dovecot-lmtp\nimap lmtp\n" {
		t.Fatalf("after the edits: %q", got)
	}
	if got := vm3.Must(t, "stat -c '%A %U %G' /var/spool/postfix/private/dovecot-lmtp"); got != "srw------- postfix postfix\n" {
		t.Errorf("the LMTP socket: %q", got)
	}

	// The stock auth_username_format: the recipient is refused.
	sendFirstname(t, host, "Lab4b - lmtp refused", "refused-by-lmtp")
	refused := vm3.WaitLog(t, "postfix/lmtp[", "to=<"+firstname+"@"+Domain+">", "status=")
	if want := "relay=vm3." + Domain + "[private/dovecot-lmtp], "; !strings.Contains(refused, want) ||
		!strings.HasSuffix(refused, " status=bounced (host vm3."+Domain+"[private/dovecot-lmtp] said: 550 5.1.1 <"+
			firstname+"@"+Domain+"> User doesn't exist: "+firstname+"@"+Domain+" (in reply to RCPT TO command))") {
		t.Errorf("postfix/lmtp with auth_username_format = %%Lu:\n%s", refused)
	}

	vm3.Must(t, `sed -i 's/^#auth_username_format = %Lu/auth_username_format = %Ln/' /etc/dovecot/conf.d/10-auth.conf
systemctl restart dovecot`)
	if got := vm3.Must(t, "doveconf -h auth_username_format"); got != "%Ln\n" {
		t.Fatalf("auth_username_format after the edit: %q", got)
	}
	deliverFirstname(t, host, vm3, "lmtp", "Lab4b - over lmtp", "delivered-by-lmtp")
	sent := vm3.WaitLog(t, "postfix/lmtp[", "to=<"+firstname+"@"+Domain+">", "status=sent")
	m := regexp.MustCompile(`: to=<` + firstname + `@` + Domain + `>, relay=vm3\.` + Domain + `\[private/dovecot-lmtp\], delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 <` +
		firstname + `@` + Domain + `> ([A-Za-z0-9+/]+) Saved\)$`).FindStringSubmatch(sent)
	if m == nil {
		t.Fatalf("postfix/lmtp's line for the delivery:\n%s", sent)
	}
	msgid := regexp.MustCompile(`message-id=(<[^>]+>)`).FindStringSubmatch(vm3.WaitLog(t, "postfix/cleanup[", queueID(sent)+": message-id="))
	if msgid == nil {
		t.Fatal("no message-id in cleanup's line")
	}
	saved := vm3.WaitLog(t, "dovecot: lmtp("+firstname+")", "<"+m[1]+">: msgid=")
	if !regexp.MustCompile(`^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d vm3 dovecot: lmtp\(` + firstname + `\)<\d+><` + regexp.QuoteMeta(m[1]) + `>: msgid=` +
		regexp.QuoteMeta(msgid[1]) + `: saved mail to INBOX$`).MatchString(saved) {
		t.Errorf("dovecot's lmtp line:\n%s", saved)
	}
	vm3.WaitLog(t, "dovecot: lmtp(", "): Connect from local")
	files := vm3.Must(t, "stat -c '%U %G %a' $(grep -l -F delivered-by-lmtp /home/"+firstname+"/Maildir/new/*)")
	if files != firstname+" "+firstname+" 600\n" {
		t.Errorf("the delivered file: %q", files)
	}
	if got := vm3.Must(t, "grep -rl refused-by-lmtp /home/"+firstname+"/Maildir || true"); got != "" {
		t.Errorf("the refused mail was delivered: %s", got)
	}
}

// imapSession is user's IMAP session from host on server's 143: it
// prints the subjects and bodies of INBOX, APPENDs a message whose body
// is mark, and logs out. Each result is one line "WHAT: value".
func imapSession(server, user, pass, mark string) string {
	return py(`import imaplib, time
def out(what, *v): print(what + ":", *v, flush=True)
c = imaplib.IMAP4("` + server + `.` + Domain + `", 143, timeout=20)
out("GREETING", c.welcome.decode())
typ, d = c.login("` + user + `", "` + pass + `")
out("LOGIN", typ, d[0].decode())
typ, d = c.select("INBOX")
out("SELECT", typ, d[0].decode())
typ, d = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
out("FETCH", typ, " | ".join(x[1].decode().strip() for x in d if isinstance(x, tuple)))
msg = b"From: ` + user + `@` + Domain + `\r\nSubject: appended\r\n\r\n` + mark + `\r\n"
typ, d = c.append("INBOX", None, imaplib.Time2Internaldate(time.time()), msg)
out("APPEND", typ, d[0].decode())
out("LOGOUT", c.logout()[0])
`)
}

// TestLoginProxy: mailboxes on two machines behind one front end, as
// Dovecot's login proxy allows. vm3 is the mailbox host, set up as lab
// 4b leaves it (plus pop3), where bob has a system account and mail in
// /home/bob/Maildir. vm2 runs dovecot as the front end: its 10-auth.conf
// takes auth-passwdfile.conf.ext instead of the system users, and its
// /etc/dovecot/users (passwords from doveadm pw) gives bob the extra
// fields proxy=y host=192.168.77.3, and alice, a system user of vm2's,
// none; carol, another of vm2's, has proxy_maybe=y with vm2's own
// address. From host, bob's IMAP session on vm2 logs in on vm3, reads his
// mail there and APPENDs a message that lands in vm3's Maildir; his POP3
// session on vm2 sees the same mailbox; alice's session stays on vm2 and
// her APPEND lands in vm2's /home/alice, and carol's in /home/carol.
// A wrong password for bob is refused on vm2 alone. vm2's maillog has imap-login's
// "proxy(bob...): Started proxying to <192.168.77.3>" line and vm3's the
// Login from vm2's address.
func TestLoginProxy(t *testing.T) {
	lab, host, vm2, vm3 := lab4b(t)
	startDovecot(t, vm3)
	vm3.Must(t, `sed -i 's/^protocols = imap$/protocols = imap pop3/' /etc/dovecot/dovecot.conf`)
	allowPlaintext(t, vm3)
	vm3.Must(t, "useradd -m bob && printf '%s\\n%s\\n' bob-pass bob-pass | passwd bob && echo kept-on-vm3 | mail -s 'on the mailbox host' bob")
	vm3.WaitLog(t, "dovecot: lda(bob)", "saved mail to INBOX")

	// The front end.
	vm2.Must(t, `sed -i 's/^#protocols = imap pop3 lmtp/protocols = imap pop3/' /etc/dovecot/dovecot.conf
sed -i -e 's/^!include auth-system.conf.ext/#&/' -e 's/^#!include auth-passwdfile.conf.ext/!include auth-passwdfile.conf.ext/' /etc/dovecot/conf.d/10-auth.conf
sed -i 's|^#mail_location =$|mail_location = maildir:~/Maildir|' /etc/dovecot/conf.d/10-mail.conf
useradd -m alice && useradd -m carol
cat >/etc/dovecot/users <<EOF
alice:$(doveadm pw -s SHA512-CRYPT -p alice-pass):$(id -u alice):$(id -g alice)::/home/alice::
carol:$(doveadm pw -s SHA512-CRYPT -p carol-pass):$(id -u carol):$(id -g carol)::/home/carol::proxy_maybe=y host=`+lab.Addr("vm2")+`
bob:$(doveadm pw -s SHA512-CRYPT -p bob-pass)::::::proxy=y host=`+lab.Addr("vm3")+`
EOF
chmod 600 /etc/dovecot/users`)
	allowPlaintext(t, vm2)
	if got := vm2.Must(t, "doveconf -h protocols mail_location; ls /home"); got != "imap pop3\nmaildir:~/Maildir\nalice\ncarol\n" {
		t.Fatalf("vm2 after the edits: %q", got)
	}

	bob := host.Must(t, imapSession("vm2", "bob", "bob-pass", "appended-through-vm2"))
	for _, c := range []struct{ what, want string }{
		{"GREETING", `^\* OK \[CAPABILITY IMAP4rev1 .*\] Dovecot ready\.$`},
		{"LOGIN", `^OK \[CAPABILITY IMAP4rev1 .*\] Logged in$`},
		{"SELECT", `^OK 1$`},
		{"FETCH", `^OK Subject: on the mailbox host \| kept-on-vm3$`},
		{"APPEND", `^OK \[APPENDUID \d+ 2\] `},
		{"LOGOUT", `^BYE$`},
	} {
		if got := field(bob, c.what); !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("bob's %s: %q does not match %s", c.what, got, c.want)
		}
	}
	if got := vm3.Must(t, "stat -c %U $(grep -rl appended-through-vm2 /home/bob/Maildir)"); got != "bob\n" {
		t.Errorf("the APPENDed message on vm3: %q", got)
	}
	if got := vm2.Run("ls /home/bob"); got.Code == 0 {
		t.Errorf("vm2 has a /home/bob: %s", got.Stdout)
	}
	// The logs: vm2 proxies, vm3 sees vm2 log in.
	proxyLine := `^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d vm2 dovecot: imap-login: proxy\(bob(,` + regexp.QuoteMeta(lab.Addr("vm3")) + `:143)?\): Started proxying to <` +
		regexp.QuoteMeta(lab.Addr("vm3")) + `> \(\d+\.\d{3} secs\): user=<bob>, method=PLAIN, rip=` + regexp.QuoteMeta(lab.Addr("host")) +
		`, lip=` + regexp.QuoteMeta(lab.Addr("vm2")) + `, session=<[A-Za-z0-9+/]{16}>$`
	if line := vm2.WaitLog(t, "imap-login: proxy(bob", "Started proxying"); !regexp.MustCompile(proxyLine).MatchString(line) {
		t.Errorf("vm2's proxy line:\n%s\ndoes not match %s", line, proxyLine)
	}
	vm2.WaitLog(t, "imap-login: proxy(bob", "): Disconnected by ", "in=", "out=")
	vm3.WaitLog(t, "dovecot: imap-login: Login: user=<bob>, method=PLAIN, rip="+lab.Addr("vm2")+", lip="+lab.Addr("vm3")+", mpid=")
	vm3.WaitLog(t, "dovecot: imap(bob)<", ">: Disconnected: Logged out in=")
	if b, _ := vm2.ReadFile("/var/log/maillog"); strings.Contains(string(b), "imap(bob)") || strings.Contains(string(b), "Login: user=<bob>") {
		t.Errorf("bob's session ran on vm2:\n%s", b)
	}

	// bob over POP3 through vm2: the same mailbox, now two messages.
	pop := host.Must(t, py(`import poplib
p = poplib.POP3("vm2.`+Domain+`", 110, timeout=20)
p.user("bob")
print(p.pass_("bob-pass").decode())
print(p.stat()[0])
print(b"\n".join(p.retr(2)[1]).decode().split("\n\n", 1)[1])
print(p.quit().decode())
`))
	if pop != "+OK Logged in.\n2\nappended-through-vm2\n+OK Logging out.\n" {
		t.Errorf("bob's POP3 session through vm2:\n%s", pop)
	}
	vm2.WaitLog(t, "pop3-login: proxy(bob", "Started proxying to <"+lab.Addr("vm3")+">", "rip="+lab.Addr("host"))
	vm3.WaitLog(t, "dovecot: pop3-login: Login: user=<bob>, method=PLAIN, rip="+lab.Addr("vm2"))

	// alice stays on vm2.
	alice := host.Must(t, imapSession("vm2", "alice", "alice-pass", "appended-on-vm2"))
	if got := field(alice, "SELECT") + " / " + field(alice, "APPEND"); !regexp.MustCompile(`^OK 0 / OK \[APPENDUID \d+ 1\] `).MatchString(got) {
		t.Errorf("alice's session on vm2:\n%s", alice)
	}
	if got := vm2.Must(t, "stat -c %U $(grep -rl appended-on-vm2 /home/alice/Maildir)"); got != "alice\n" {
		t.Errorf("alice's APPEND on vm2: %q", got)
	}
	vm2.WaitLog(t, "dovecot: imap-login: Login: user=<alice>, method=PLAIN, rip="+lab.Addr("host")+", lip="+lab.Addr("vm2"))
	vm2.WaitLog(t, "dovecot: imap(alice)<", ">: Disconnected: Logged out in=")
	if b, _ := vm3.ReadFile("/var/log/maillog"); strings.Contains(string(b), "alice") {
		t.Errorf("vm3 saw alice:\n%s", b)
	}

	// carol's passdb line says proxy_maybe=y with vm2's own address:
	// she stays on vm2 too.
	carol := host.Must(t, imapSession("vm2", "carol", "carol-pass", "carol-on-vm2"))
	if got := field(carol, "APPEND"); !strings.HasPrefix(got, "OK [APPENDUID ") {
		t.Errorf("carol's session on vm2:\n%s", carol)
	}
	if got := vm2.Must(t, "stat -c %U $(grep -rl carol-on-vm2 /home/carol/Maildir)"); got != "carol\n" {
		t.Errorf("carol's APPEND on vm2: %q", got)
	}
	vm2.WaitLog(t, "dovecot: imap-login: Login: user=<carol>, method=PLAIN, rip="+lab.Addr("host")+", lip="+lab.Addr("vm2"))

	// A wrong password for bob is refused by vm2's passdb; vm3 hears
	// nothing of it.
	before, _ := vm3.ReadFile("/var/log/maillog")
	wrong := host.Must(t, py(`import imaplib
c = imaplib.IMAP4("vm2.`+Domain+`", 143, timeout=20)
try:
    c.login("bob", "not-bob-pass")
except imaplib.IMAP4.error as e:
    print(e)
c.shutdown()
`))
	if wrong != "b'[AUTHENTICATIONFAILED] Authentication failed.'\n" {
		t.Errorf("bob's wrong password through vm2: %q", wrong)
	}
	vm2.WaitLog(t, "dovecot: imap-login: Disconnected: ", " (auth failed, 1 attempts in ", "user=<bob>, method=PLAIN, rip="+lab.Addr("host"))
	if after, _ := vm3.ReadFile("/var/log/maillog"); len(after) != len(before) {
		t.Errorf("vm3 logged the wrong password:\n%s", after[len(before):])
	}
}
