package tests

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postdove/compat/oracle"
	"postdove/pkg/cleanup"
	"postdove/pkg/maillog"
	"postdove/pkg/master"
	"postdove/pkg/pickup"
	"postdove/pkg/postconf"
	"postdove/pkg/queue"
)

// sendmailEnv is a config dir whose main.cf points queue_directory at a
// fresh queue and command_directory at the built binaries.
type sendmailEnv struct {
	t        *testing.T
	dir, bin string
	q        *queue.Queue
}

func sendmailSetup(t *testing.T, extra string) *sendmailEnv {
	t.Helper()
	bin := oracle.Postdove(t, "sendmail")
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	main := "queue_directory = " + qdir + "\ncommand_directory = " + filepath.Dir(bin) +
		"\nmyhostname = vm2.example.ops\nmydomain = example.ops\nmyorigin = $mydomain\n" +
		"maillog_file = " + filepath.Join(dir, "maillog") + "\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0644); err != nil {
		t.Fatal(err)
	}
	if err := queue.Setup(qdir, "root", "root"); err != nil {
		t.Fatal(err)
	}
	return &sendmailEnv{t: t, dir: dir, bin: bin, q: queue.New(qdir)}
}

func (e *sendmailEnv) run(stdin string, args ...string) oracle.Result {
	return oracle.Run(exec.Command(e.bin, append([]string{"-C", e.dir}, args...)...), stdin)
}

func (e *sendmailEnv) maildrop() []*queue.Message {
	e.t.Helper()
	ids, err := e.q.List(queue.Maildrop)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*queue.Message
	for _, id := range ids {
		m, err := e.q.ReadEnvelope(queue.Maildrop, id)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func recipientList(m *queue.Message) string {
	var r []string
	for _, x := range m.Recipients {
		r = append(r, x.Address)
	}
	return strings.Join(r, " ")
}

func TestSendmailRecipientsAndSender(t *testing.T) {
	e := sendmailSetup(t, "")
	res := e.run("Subject: x\r\n\r\nbody\r\n.\r\nnot read\r\n", "-f", "bob@x.org", "-F", "Bob B", "alice", "carol@y")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	ms := e.maildrop()
	if len(ms) != 1 || ms[0].Sender != "bob@x.org" || recipientList(ms[0]) != "alice carol@y" ||
		ms[0].Attrs["full_name"] != "Bob B" || ms[0].Attrs["uid"] != "0" {
		t.Fatalf("maildrop: %+v", ms)
	}
	if ms[0].Size != int64(len("Subject: x\n\nbody\n")) {
		t.Errorf("content size %d: CRLF or the dot line not handled", ms[0].Size)
	}
}

func TestSendmailExtract(t *testing.T) {
	e := sendmailSetup(t, "")
	res := e.run("To: a@b, \"X, Y\" <c@d>\nCc: e\nBcc: f\nSubject: x\n\nb\n", "-t", "-oi")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	ms := e.maildrop()
	if len(ms) != 1 || recipientList(ms[0]) != "a@b c@d e f" || ms[0].Sender != "root" {
		t.Fatalf("maildrop: %+v", ms)
	}
}

func TestSendmailErrorsMatchPostfix(t *testing.T) {
	e := sendmailSetup(t, "message_size_limit = 1000\n")
	cases := []struct {
		stdin  string
		args   []string
		stderr string
	}{
		{"Subject: x\n\n", []string{"-t"}, "sendmail: fatal: root(0): No recipient addresses found in message header\n"},
		{"Subject: x\n\n", nil, "sendmail: fatal: root(0): Recipient addresses must be specified on the command line or via the -t option\n"},
		{strings.Repeat("z", 5000), []string{"root"}, "sendmail: fatal: root(0): message file too big\n"},
		{"", []string{"-Z"}, "sendmail: invalid option -- 'Z'\nsendmail: fatal: usage: sendmail [options]\n"},
		{"", []string{"-f"}, "sendmail: option requires an argument -- 'f'\nsendmail: fatal: usage: sendmail [options]\n"},
		{"", []string{"-bx"}, "sendmail: fatal: unsupported: -bx\n"},
	}
	for _, c := range cases {
		res := e.run(c.stdin, c.args...)
		if res.Code != 75 || res.Stderr != c.stderr {
			t.Errorf("%v: exit %d, stderr %q; want 75, %q", c.args, res.Code, res.Stderr, c.stderr)
		}
	}
	if ms := e.maildrop(); len(ms) != 0 {
		t.Errorf("rejected mail left in maildrop: %d files", len(ms))
	}
	if ents, _ := os.ReadDir(filepath.Join(e.q.Dir, queue.Maildrop)); len(ents) != 0 {
		t.Errorf("temporary files left in maildrop: %v", ents)
	}
}

func TestSendmailBigMessage(t *testing.T) {
	e := sendmailSetup(t, "")
	res := e.run("Subject: big\n\n"+strings.Repeat(strings.Repeat("x", 1000)+"\n", 50*1024), "root")
	if res.Code != 75 || !strings.Contains(res.Stderr, "message file too big") {
		t.Fatalf("50 MB: exit %d %q", res.Code, res.Stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.q.Dir, queue.Maildrop)); len(ents) != 0 {
		t.Errorf("files left in maildrop: %v", ents)
	}
}

func TestSendmailSMTP(t *testing.T) {
	e := sendmailSetup(t, "")
	res := e.run("EHLO x\r\nMAIL FROM:<bob@x>\r\nRCPT TO:<root>\r\nDATA\r\nSubject: s\r\n\r\n..dot\r\n.\r\nQUIT\r\n", "-bs")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "220 vm2.example.ops ESMTP") ||
		!strings.Contains(res.Stdout, "250 2.0.0 Ok: queued as ") || !strings.HasSuffix(res.Stdout, "221 2.0.0 Bye\r\n") {
		t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	ms := e.maildrop()
	if len(ms) != 1 || ms[0].Sender != "bob@x" || recipientList(ms[0]) != "root" {
		t.Fatalf("maildrop: %+v", ms)
	}
}

// TestMailClientsThroughPickup submits with real s-nail and bsd-mailx,
// then runs pickup and cleanup and checks the incoming queue files.
func TestMailClientsThroughPickup(t *testing.T) {
	e := sendmailSetup(t, "")
	rc := filepath.Join(e.dir, "mailrc")
	if err := os.WriteFile(rc, []byte("set sendmail="+e.bin+"\n"), 0644); err != nil {
		t.Fatal(err)
	}
	muttrc := filepath.Join(e.dir, "muttrc")
	if err := os.WriteFile(muttrc, []byte("set sendmail=\""+e.bin+"\"\nset use_from=no\nset record=\"\"\n"), 0644); err != nil {
		t.Fatal(err)
	}
	clients := map[string][]string{
		"s-nail":    {"-:/", "-Sv15-compat", "-Smta=" + e.bin, "-s", "via s-nail", "alice"},
		"bsd-mailx": {"-s", "via mailx", "alice"},
		"mutt":      {"-n", "-F", muttrc, "-s", "via mutt", "alice"},
	}
	for name, args := range clients {
		path, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s is not installed (.ci/run installs it)", name)
		}
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), "MAIL_CONFIG="+e.dir, "MAILRC="+rc, "HOME="+e.dir)
		res := oracle.Run(cmd, "hello from "+name+"\n")
		if res.Code != 0 {
			t.Errorf("%s: exit %d: %s", name, res.Code, res.Stderr)
		}
	}
	ms := e.maildrop()
	if len(ms) != len(clients) {
		t.Fatalf("%d messages in maildrop, want one from each of %d clients", len(ms), len(clients))
	}
	cfg, err := postconf.Load(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(e.dir, "maillog")
	clog, _ := maillog.New(maillog.Options{SyslogName: "postfix", Program: "cleanup", File: logf, Hostname: "vm2"})
	plog, _ := maillog.New(maillog.Options{SyslogName: "postfix", Program: "pickup", File: logf, Hostname: "vm2"})
	p := &pickup.Pickup{Queue: e.q, Cleanup: cleanup.New(cfg, e.q, clog), Log: plog}
	n, err := p.Scan()
	if err != nil || n != len(ms) {
		t.Fatalf("pickup: %d of %d, %v", n, len(ms), err)
	}
	if left := e.maildrop(); len(left) != 0 {
		t.Errorf("maildrop not emptied")
	}
	ids, _ := e.q.List(queue.Incoming)
	for _, id := range ids {
		m, err := e.q.ReadEnvelope(queue.Incoming, id)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := e.q.Open(queue.Incoming, id)
		body, _ := io.ReadAll(f.Content())
		f.Close()
		// mutt qualifies "alice" with the host name itself (alice@vm, then
		// append_dot_mydomain); the others leave it to cleanup.
		if rl := recipientList(m); m.Sender != "root@example.ops" || rl != "alice@example.ops" && !strings.HasPrefix(rl, "alice@vm") ||
			!strings.HasPrefix(string(body), "Received: by vm2.example.ops (Postfix, from userid 0)\n\tid ") ||
			!strings.Contains(string(body), "\nhello from ") {
			t.Errorf("incoming %s: %+v\n%s", id, m, body)
		}
	}
	log, _ := os.ReadFile(logf)
	if strings.Count(string(log), "uid=0 from=<root>") != len(ms) || strings.Count(string(log), ": message-id=<") != len(ms) {
		t.Errorf("maillog:\n%s", log)
	}
}

// TestSendmailDaemonAndAliasFlags: with the mail system stopped,
// "sendmail -bd" starts it (as "postfix start" does) and exits at once;
// "sendmail -I" rebuilds the aliases database like newaliases.
func TestSendmailDaemonAndAliasFlags(t *testing.T) {
	l := labStart(t, "", "")
	l.shutdown()
	if master.Running(l.QueueDir) != 0 {
		t.Fatal("master still running after postfix stop")
	}
	if res := oracle.Run(l.Command("sendmail", "-bd"), ""); res.Code != 0 || res.Stderr != "" {
		t.Fatalf("sendmail -bd: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitFor("sendmail -bd to start the master", func() bool { return master.Running(l.QueueDir) != 0 })
	if err := os.WriteFile(l.Aliases, []byte("sales: root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := oracle.Run(l.Command("sendmail", "-I"), ""); res.Code != 0 || res.Stderr != "" {
		t.Fatalf("sendmail -I: exit %d: %s", res.Code, res.Stderr)
	}
	res := oracle.Run(l.Command("postalias", "-q", "sales", l.Aliases), "")
	if strings.TrimSpace(res.Stdout) != "root" {
		t.Errorf("after sendmail -I, postalias -q sales: %q %s", res.Stdout, res.Stderr)
	}
}
