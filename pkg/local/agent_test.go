package local

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postdove/pkg/maps"
)

// The tests run as root with two real accounts created for the run.
const (
	userA  = "pdlalice"
	userB  = "pdlbob"
	domain = "vm2.example.ops"
)

var base string // world-searchable scratch folder holding homes and spools

func TestMain(m *testing.M) {
	MaybeRunWorker()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("local tests need root (real users, uid switching); skipping")
		return 0
	}
	var err error
	base, err = os.MkdirTemp("", "pdlocal")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0755)
	for _, u := range []string{userA, userB} {
		exec.Command("userdel", u).Run()
		home := filepath.Join(base, u)
		if out, err := exec.Command("useradd", "-M", "-d", home, "-s", "/bin/sh", u).CombinedOutput(); err != nil {
			fmt.Printf("useradd %s: %v %s\n", u, err, out)
			return 1
		}
		defer exec.Command("userdel", u).Run()
	}
	return m.Run()
}

func lookup(t *testing.T, name string) *User {
	t.Helper()
	u, err := LookupPasswd("/etc/passwd", name)
	if err != nil || u == nil {
		t.Fatalf("user %s: %v", name, err)
	}
	return u
}

// env is one test's mail system: homes, a spool like CentOS's, aliases.
type env struct {
	t      *testing.T
	dir    string
	spool  string
	logbuf lockedBuffer
	agent  *Agent
}

// newEnv makes fresh homes for the test users and an agent whose
// main.cf is params (over a few defaults).
func newEnv(t *testing.T, params map[string]string) *env {
	t.Helper()
	dir, err := os.MkdirTemp(base, "t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0755)
	e := &env{t: t, dir: dir, spool: filepath.Join(dir, "spool")}
	os.Mkdir(e.spool, 0775)
	os.Chown(e.spool, 0, 8) // root:mail 0775, as on CentOS
	os.Chmod(e.spool, 0775)
	for _, name := range []string{userA, userB} {
		u := lookup(t, name)
		os.RemoveAll(u.Home)
		os.Mkdir(u.Home, 0700)
		os.Chown(u.Home, u.Uid, u.Gid)
		t.Cleanup(func() { os.RemoveAll(u.Home) })
	}
	all := map[string]string{
		"myhostname":           domain,
		"mydestination":        domain + ", localhost",
		"mail_spool_directory": e.spool,
		"alias_maps":           "",
		"queue_directory":      dir,
	}
	for k, v := range params {
		all[k] = strings.ReplaceAll(v, "$DIR", dir)
	}
	s, err := SettingsFrom(mainCF(all))
	if err != nil {
		t.Fatal(err)
	}
	e.agent = &Agent{Settings: s, Logf: func(f string, a ...any) { fmt.Fprintf(&e.logbuf, f+"\n", a...) }}
	t.Cleanup(e.agent.Close)
	return e
}

// lockedBuffer is the agent's log in a test: deliveries may run at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// write creates a file in the test folder, readable by everyone.
func (e *env) write(name, content string, mode os.FileMode) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

const testMsg = "From: carol@example.org\nSubject: hello there\n\nline one\nFrom the start of a line\nlast\n"

func (e *env) deliver(msg string, rcpts ...string) []Result {
	req := Request{QueueID: "3F2A81234B", Sender: "carol@example.org", Arrival: time.Now(),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil }}
	for i, r := range rcpts {
		req.Recipients = append(req.Recipients, Recipient{Address: r, Index: i})
	}
	return e.agent.Deliver(req)
}

func one(t *testing.T, rs []Result) Result {
	t.Helper()
	if len(rs) != 1 {
		t.Fatalf("want 1 result, got %+v", rs)
	}
	return rs[0]
}

func expect(t *testing.T, r Result, st Status, dsn, text string) {
	t.Helper()
	if r.Status != st || r.DSN != dsn || !strings.Contains(r.Text, text) {
		t.Fatalf("got %v %s %q, want %v %s containing %q", r.Status, r.DSN, r.Text, st, dsn, text)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func owner(t *testing.T, path string) (uid, gid int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), fi.Mode().Perm()
}

func TestSpoolMbox(t *testing.T) {
	e := newEnv(t, nil)
	a := lookup(t, userA)
	r := one(t, e.deliver(testMsg, "PDLAlice@"+domain))
	expect(t, r, Sent, "2.0.0", "delivered to mailbox")
	e.deliver("Subject: second\n\nbody two\n", userA+"@"+domain)
	mbox := filepath.Join(e.spool, userA)
	uid, gid, mode := owner(t, mbox)
	if uid != a.Uid || gid != a.Gid || mode != 0600 {
		t.Errorf("mailbox owner %d:%d mode %o, want %d:%d 0600", uid, gid, mode, a.Uid, a.Gid)
	}
	got := read(t, mbox)
	for _, want := range []string{
		"From carol@example.org  ",
		"\nReturn-Path: <carol@example.org>\nX-Original-To: PDLAlice@" + domain + "\nDelivered-To: PDLAlice@" + domain + "\n",
		"\n>From the start of a line\n",
		"\nlast\n\nFrom carol@example.org  ",
	} {
		if !strings.Contains(got, want) && !strings.Contains(strings.ToLower(got), strings.ToLower(want)) {
			t.Errorf("mailbox lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(mbox + ".lock"); err == nil {
		t.Error("dot lock left behind")
	}
	// A real mail reader sees two messages.
	out, err := exec.Command("s-nail", "-N", "-H", "-f", mbox).CombinedOutput()
	if err != nil {
		t.Fatalf("s-nail: %v %s", err, out)
	}
	if !strings.Contains(string(out), "hello there") || !strings.Contains(string(out), "second") || strings.Count(strings.TrimSpace(string(out)), "\n") != 1 {
		t.Errorf("s-nail -H:\n%s", out)
	}
	log := e.logbuf.String()
	re := regexp.MustCompile(`^3F2A81234B: to=<PDLAlice@vm2\.example\.ops>, relay=local, delay=[0-9.]+, delays=0/0/0/[0-9.]+, dsn=2\.0\.0, status=sent \(delivered to mailbox\)$`)
	if first := strings.SplitN(log, "\n", 2)[0]; !re.MatchString(first) {
		t.Errorf("log line %q", first)
	}
}

func TestHomeMaildirAndMbox(t *testing.T) {
	e := newEnv(t, map[string]string{"home_mailbox": "Maildir/"})
	a := lookup(t, userA)
	expect(t, one(t, e.deliver(testMsg, userA+"@"+domain)), Sent, "2.0.0", "delivered to maildir")
	files, _ := filepath.Glob(filepath.Join(a.Home, "Maildir/new/*"))
	if len(files) != 1 {
		t.Fatalf("Maildir/new holds %v", files)
	}
	if uid, _, _ := owner(t, files[0]); uid != a.Uid {
		t.Errorf("maildir file owned by %d", uid)
	}
	got := read(t, files[0])
	if !strings.HasPrefix(got, "Return-Path: <carol@example.org>\nX-Original-To: pdlalice@"+domain+"\nDelivered-To: pdlalice@"+domain+"\nFrom: carol") || !strings.Contains(got, "\nFrom the start") {
		t.Errorf("maildir message:\n%s", got)
	}
	for _, d := range []string{"tmp", "cur"} {
		if fi, err := os.Stat(filepath.Join(a.Home, "Maildir", d)); err != nil || !fi.IsDir() {
			t.Errorf("Maildir/%s missing", d)
		}
	}

	e = newEnv(t, map[string]string{"home_mailbox": "Mailbox"})
	expect(t, one(t, e.deliver(testMsg, userA+"@"+domain)), Sent, "2.0.0", "delivered to mailbox")
	if got := read(t, filepath.Join(a.Home, "Mailbox")); !strings.HasPrefix(got, "From carol@example.org  ") {
		t.Errorf("home mbox:\n%s", got)
	}
	// A home the user cannot write: bounced, nothing created; Postfix
	// names the dot lock it could not make.
	os.Chown(a.Home, 0, 0)
	r := one(t, e.deliver(testMsg, userA+"@"+domain))
	mailbox := filepath.Join(a.Home, "Mailbox")
	expect(t, r, Bounced, "5.2.0", "cannot update mailbox "+mailbox+" for user "+userA+". unable to create lock file "+mailbox+".lock: Permission denied")
}

// recorder is a delivery command that records its uid, arguments,
// environment and input, then exits with $1.
func (e *env) recorder() (script, out string) {
	out = filepath.Join(e.dir, "out")
	os.Mkdir(out, 0777)
	os.Chmod(out, 0777)
	script = e.write("rec.sh", "#!/bin/sh\nd="+out+"/$(id -u)\nmkdir -p $d\nid -u > $d/uid\npwd > $d/pwd\nenv | sort > $d/env\necho \"$@\" > $d/args\ncat > $d/msg\necho 'some output' >&2\nexit ${CODE:-0}\n", 0755)
	return script, out
}

func TestMailboxCommand(t *testing.T) {
	e := newEnv(t, map[string]string{"recipient_delimiter": "+"})
	script, out := e.recorder()
	e.agent.Settings.MailboxCommand = script + ` -f "$SENDER" -a "$RECIPIENT"`
	a := lookup(t, userA)
	r := one(t, e.deliver(testMsg, userA+"+news@"+domain))
	expect(t, r, Sent, "2.0.0", "delivered to command: "+script)
	d := filepath.Join(out, strconv.Itoa(a.Uid))
	if got := strings.TrimSpace(read(t, filepath.Join(d, "args"))); got != "-f carol@example.org -a pdlalice+news@"+domain {
		t.Errorf("args %q", got)
	}
	envs := read(t, filepath.Join(d, "env"))
	for _, want := range []string{"SENDER=carol@example.org", "RECIPIENT=pdlalice+news@" + domain, "USER=" + userA, "LOGNAME=" + userA,
		"HOME=" + a.Home, "SHELL=/bin/sh", "LOCAL=pdlalice+news", "DOMAIN=" + domain, "EXTENSION=news",
		"ORIGINAL_RECIPIENT=pdlalice+news@" + domain, "PATH=/usr/bin:/bin"} {
		if !strings.Contains(envs, want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, envs)
		}
	}
	if msg := read(t, filepath.Join(d, "msg")); !strings.HasPrefix(msg, "From carol@example.org  ") || !strings.Contains(msg, "\nDelivered-To: pdlalice+news@"+domain+"\nFrom: carol") {
		t.Errorf("command input:\n%s", msg)
	}
	// Mail for root runs the command as default_privs (nobody): that is
	// why root stops receiving mail once dovecot-lda is configured.
	expect(t, one(t, e.deliver(testMsg, "root@"+domain)), Sent, "2.0.0", "delivered to command")
	nobody := lookup(t, "nobody")
	if got := strings.TrimSpace(read(t, filepath.Join(out, strconv.Itoa(nobody.Uid), "uid"))); got != strconv.Itoa(nobody.Uid) {
		t.Errorf("root's command ran as uid %s", got)
	}
}

// TestMailboxCommandMapsUnavailable: a mailbox_command_maps table that
// cannot be opened defers, as Postfix: "table lookup failure".
func TestMailboxCommandMapsUnavailable(t *testing.T) {
	e := newEnv(t, map[string]string{"mailbox_command_maps": "hash:$DIR/commands"})
	expect(t, one(t, e.deliver(testMsg, userA+"@"+domain)), Deferred, "4.3.0", "table lookup failure")
	spec := "hash:" + filepath.Join(e.dir, "commands")
	if want := "warning: " + spec + " lookup error for \"" + userA + "\"\n"; !strings.Contains(e.logbuf.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, e.logbuf.String())
	}
}

// Commands run in queue_directory, or in command_execution_directory
// expanded with the recipient's attributes, each censored by
// execution_directory_expansion_filter; a malformed value defers.
func TestCommandExecutionDirectory(t *testing.T) {
	e := newEnv(t, map[string]string{"recipient_delimiter": "+"})
	script, out := e.recorder()
	e.agent.Settings.MailboxCommand = script
	a := lookup(t, userA)
	pwd := filepath.Join(out, strconv.Itoa(a.Uid), "pwd")
	expect(t, one(t, e.deliver(testMsg, userA+"@"+domain)), Sent, "2.0.0", "delivered to command")
	if got := strings.TrimSpace(read(t, pwd)); got != e.dir {
		t.Errorf("command ran in %s, want queue_directory %s", got, e.dir)
	}
	dir := filepath.Join(e.dir, "x-a_b_c_d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.agent.Settings.CommandDirectory = e.dir + "/x-$extension"
	expect(t, one(t, e.deliver(testMsg, userA+"+a;b c`d@"+domain)), Sent, "2.0.0", "delivered to command")
	if got := strings.TrimSpace(read(t, pwd)); got != dir {
		t.Errorf("command ran in %s, want %s", got, dir)
	}
	e.agent.Settings.CommandDirectory = "${home"
	expect(t, one(t, e.deliver(testMsg, userA+"@"+domain)), Deferred, "4.3.5", "mail system configuration error")
}

func TestCommandExitStatus(t *testing.T) {
	e := newEnv(t, nil)
	script, _ := e.recorder()
	for _, c := range []struct {
		code int
		st   Status
		dsn  string
		text string
	}{
		{0, Sent, "2.0.0", "delivered to command: CODE=0 " + script},
		{75, Deferred, "4.3.0", "temporary failure. Command output: some output"},
		{67, Bounced, "5.1.1", "user unknown. Command output: some output"},
		{1, Bounced, "5.3.0", `Command died with status 1: "CODE=1 ` + script + `". Command output: some output`},
	} {
		e.agent.Settings.MailboxCommand = fmt.Sprintf("CODE=%d %s", c.code, script)
		expect(t, one(t, e.deliver(testMsg, userB+"@"+domain)), c.st, c.dsn, c.text)
	}
	e.agent.Settings.MailboxCommand = "sleep 5"
	e.agent.Settings.CommandTimeLimit = 200 * time.Millisecond
	expect(t, one(t, e.deliver(testMsg, userB+"@"+domain)), Bounced, "5.3.0", `Command time limit exceeded: "sleep 5"`)
}

func TestAliases(t *testing.T) {
	e := newEnv(t, map[string]string{"alias_maps": "texthash:$DIR/aliases"})
	script, out := e.recorder()
	file := filepath.Join(e.dir, "archive")
	e.write("members", "# list members\n"+userB+"\n", 0644)
	e.write("aliases", strings.Join([]string{
		"postmaster root",
		"root " + userA,
		"team " + userA + ", " + userB,
		"pipe \"|" + script + " x\"",
		"arch " + file,
		"self " + userB + ", self",
		"incl :include:" + filepath.Join(e.dir, "members"),
		"inclpipe :include:" + filepath.Join(e.dir, "pipes"),
	}, "\n")+"\n", 0644)
	e.write("pipes", "|/bin/true\n", 0644)
	os.Chmod(e.dir, 0755)

	expect(t, one(t, e.deliver(testMsg, "postmaster@"+domain)), Sent, "2.0.0", "delivered to mailbox")
	if !strings.Contains(e.logbuf.String(), "to=<pdlalice@"+domain+">, orig_to=<postmaster@"+domain+">") {
		t.Errorf("log:\n%s", e.logbuf.String())
	}
	rs := e.deliver(testMsg, "team@"+domain)
	if len(rs) != 2 || rs[0].Final != userA+"@"+domain || rs[1].Final != userB+"@"+domain {
		t.Fatalf("team: %+v", rs)
	}
	// Commands from root's alias file run as default_privs.
	expect(t, one(t, e.deliver(testMsg, "pipe@"+domain)), Sent, "2.0.0", "delivered to command: "+script+" x")
	nobody := lookup(t, "nobody")
	if _, err := os.Stat(filepath.Join(out, strconv.Itoa(nobody.Uid), "msg")); err != nil {
		t.Errorf("alias command did not run as nobody: %v", err)
	}
	os.WriteFile(file, nil, 0666)
	os.Chmod(file, 0666)
	expect(t, one(t, e.deliver(testMsg, "arch@"+domain)), Sent, "2.0.0", "delivered to file: "+file)
	if got := read(t, file); !strings.HasPrefix(got, "From carol@example.org  ") || !strings.Contains(got, "Delivered-To: arch@"+domain) {
		t.Errorf("file:\n%s", got)
	}
	// An alias naming itself delivers to the mailbox of that name; there
	// is no account "self", so that part bounces as unknown.
	rs = e.deliver(testMsg, "self@"+domain)
	if len(rs) != 2 || rs[0].Status != Sent || rs[1].Text != `unknown user: "self"` {
		t.Errorf("self: %+v", rs)
	}
	expect(t, one(t, e.deliver(testMsg, "incl@"+domain)), Sent, "2.0.0", "delivered to mailbox")
	expect(t, one(t, e.deliver(testMsg, "inclpipe@"+domain)), Bounced, "5.7.1", "mail to command is restricted")
	// Duplicates are eliminated within one recipient's expansion, as
	// Postfix's local(8) does with one recipient per request: team and
	// pdlalice in one message make two copies for pdlalice, each logged.
	before := strings.Count(read(t, filepath.Join(e.spool, userA)), "\nFrom carol")
	rs = e.deliver(testMsg, "team@"+domain, userA+"@"+domain)
	if len(rs) != 3 || rs[2].Index != 1 || rs[2].Final != userA+"@"+domain {
		t.Errorf("per-recipient duplicate elimination: %+v", rs)
	}
	if after := strings.Count(read(t, filepath.Join(e.spool, userA)), "\nFrom carol"); after != before+2 {
		t.Errorf("pdlalice got %d copies", after-before)
	}
	if Overall(rs, 1) != Sent {
		t.Errorf("duplicate recipient overall %v", Overall(rs, 1))
	}
}

func TestForwardFile(t *testing.T) {
	e := newEnv(t, map[string]string{"recipient_delimiter": "+"})
	b := lookup(t, userB)
	fwd := filepath.Join(b.Home, ".forward")
	os.WriteFile(fwd, []byte(userA+"\r\n\\"+userB+", remote@example.net\n"), 0644)
	os.Chown(fwd, b.Uid, b.Gid)
	var sub bytes.Buffer
	e.agent.Resubmit = func(sender string, rcpts []string, content io.Reader) (string, error) {
		fmt.Fprintf(&sub, "%s %v\n", sender, rcpts)
		io.Copy(&sub, content)
		return "ABCDEF1234", nil
	}
	rs := e.deliver(testMsg, userB+"@"+domain)
	if len(rs) != 3 {
		t.Fatalf("results %+v", rs)
	}
	expect(t, rs[0], Sent, "2.0.0", "delivered to mailbox")
	expect(t, rs[1], Sent, "2.0.0", "delivered to mailbox")
	expect(t, rs[2], Sent, "2.0.0", "forwarded as ABCDEF1234")
	if !strings.HasPrefix(sub.String(), "carol@example.org [remote@example.net]\nDelivered-To: pdlbob@"+domain+"\nFrom: carol") {
		t.Errorf("resubmitted:\n%s", sub.String())
	}
	for _, u := range []string{userA, userB} {
		if _, err := os.Stat(filepath.Join(e.spool, u)); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	// A .forward the user cannot read (a folder) is skipped.
	os.Remove(fwd)
	os.Mkdir(fwd, 0700)
	expect(t, one(t, e.deliver(testMsg, userB+"@"+domain)), Sent, "2.0.0", "delivered to mailbox")
}

func TestUnknownUserAndLoops(t *testing.T) {
	e := newEnv(t, map[string]string{"recipient_delimiter": "+"})
	expect(t, one(t, e.deliver(testMsg, "NoSuch@"+domain)), Bounced, "5.1.1", `unknown user: "nosuch"`)
	if !strings.Contains(e.logbuf.String(), `dsn=5.1.1, status=bounced (unknown user: "nosuch")`) {
		t.Errorf("log: %s", e.logbuf.String())
	}
	looped := "Delivered-To: pdlalice@" + domain + "\n" + testMsg
	expect(t, one(t, e.deliver(looped, userA+"@"+domain)), Bounced, "5.4.6", "mail forwarding loop for pdlalice@"+domain)
	if _, err := os.Stat(filepath.Join(e.spool, userA)); err == nil {
		t.Error("looping message was delivered")
	}
	e.agent.Settings.LuserRelay = userA + "+$user"
	expect(t, one(t, e.deliver(testMsg, "nosuch@"+domain)), Sent, "2.0.0", "delivered to mailbox")
	// A relay that is itself unknown bounces instead of looping.
	e.agent.Settings.LuserRelay = "other-$user"
	expect(t, one(t, e.deliver(testMsg, "nosuch@"+domain)), Bounced, "5.1.1", `unknown user: "other-nosuch"`)
}

func TestMissingAliasTable(t *testing.T) {
	e := newEnv(t, map[string]string{"alias_maps": "texthash:$DIR/missing"})
	r := one(t, e.deliver(testMsg, userA+"@"+domain))
	expect(t, r, Deferred, "4.3.0", "alias database unavailable")
}

// TestUnavailableAliasDatabase: a missing or unreadable alias database
// defers with Postfix's warnings (and the command that rebuilds an
// unreadable one), and a database built later is used at once.
func TestUnavailableAliasDatabase(t *testing.T) {
	e := newEnv(t, map[string]string{"alias_maps": "hash:$DIR/aliases"})
	al := filepath.Join(e.dir, "aliases")
	expect(t, one(t, e.deliver(testMsg, "team@"+domain)), Deferred, "4.3.0", "alias database unavailable")
	for _, want := range []string{
		"error: open database " + al + ".db: No such file or directory\n",
		"warning: hash:" + al + " is unavailable. open database " + al + ".db: No such file or directory\n",
		"warning: hash:" + al + ": lookup of 'team' failed\n",
	} {
		if !strings.Contains(e.logbuf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, e.logbuf.String())
		}
	}
	e.write("aliases.db", "a file in no database format, long enough to be looked at", 0644)
	expect(t, one(t, e.deliver(testMsg, "team@"+domain)), Deferred, "4.3.0", "alias database unavailable")
	if want := "warning: " + al + ".db cannot be read; run \"postalias " + al + "\" to rebuild it\n"; !strings.Contains(e.logbuf.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, e.logbuf.String())
	}
	var b maps.Builder
	b.Add([]byte("team"), []byte(userB))
	if err := b.WriteFile(al+".db", 0644, -1, -1); err != nil {
		t.Fatal(err)
	}
	if r := one(t, e.deliver(testMsg, "team@"+domain)); r.Status != Sent || r.Final != userB+"@"+domain {
		t.Fatalf("after postalias: %+v", r)
	}
}

func TestWorkerReuse(t *testing.T) {
	e := newEnv(t, nil)
	for i := 0; i < 20; i++ {
		expect(t, one(t, e.deliver(testMsg, userA+"@"+domain)), Sent, "2.0.0", "delivered to mailbox")
	}
	e.agent.pool.mu.Lock()
	n := 0
	for _, ws := range e.agent.pool.idle {
		n += len(ws)
	}
	e.agent.pool.mu.Unlock()
	if n != 1 {
		t.Errorf("%d idle workers after 20 deliveries for one user, want 1", n)
	}
}

// TestAliasTableRebuilt: an alias added to the table after the agent
// first used it is seen by the next delivery (newaliases while running).
func TestAliasTableRebuilt(t *testing.T) {
	e := newEnv(t, map[string]string{"alias_maps": "texthash:$DIR/aliases"})
	e.write("aliases", "root "+userA+"\n", 0644)
	expect(t, one(t, e.deliver(testMsg, "root@"+domain)), Sent, "2.0.0", "delivered to mailbox")
	expect(t, one(t, e.deliver(testMsg, "sales@"+domain)), Bounced, "5.1.1", `unknown user: "sales"`)
	e.write("aliases", "root "+userA+"\nsales "+userB+"\n", 0644)
	rs := e.deliver(testMsg, "sales@"+domain)
	if r := one(t, rs); r.Status != Sent || r.Final != userB+"@"+domain {
		t.Fatalf("after rebuild: %+v", r)
	}
}

// TestMaildirNotWritable is a home the user cannot write (owned by
// root): like Postfix, the delivery bounces with the tmp/ file it could
// not create, after two warnings.
func TestMaildirNotWritable(t *testing.T) {
	e := newEnv(t, map[string]string{"home_mailbox": "Maildir/"})
	a := lookup(t, userA)
	os.Chown(a.Home, 0, 0)
	r := one(t, e.deliver(testMsg, userA+"@"+domain))
	re := regexp.MustCompile(`^maildir delivery failed: create maildir file ` + regexp.QuoteMeta(a.Home) + `/Maildir/tmp/\d+\.\S+: Permission denied$`)
	if r.Status != Bounced || r.DSN != "5.2.0" || !re.MatchString(r.Text) {
		t.Errorf("result %+v", r)
	}
	log := e.logbuf.String()
	want := fmt.Sprintf("warning: maildir access problem for UID/GID=%d/%d: %s\nwarning: perhaps you need to create the maildirs in advance\n", a.Uid, a.Gid, strings.TrimPrefix(r.Text, "maildir delivery failed: "))
	if !strings.HasPrefix(log, want) {
		t.Errorf("log:\n%s\nwant first:\n%s", log, want)
	}
	if _, err := os.Stat(filepath.Join(a.Home, "Maildir")); err == nil {
		t.Errorf("Maildir was created")
	}
}

// Parallel first deliveries to a spool mailbox that does not exist yet:
// none may see the new file before its owner is set (it would defer with
// "file has bad owner uid 0").
func TestSpoolMboxCreateRace(t *testing.T) {
	for round := 0; round < 6; round++ {
		e := newEnv(t, nil)
		var wg sync.WaitGroup
		results := make([][]Result, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.deliver(testMsg, userA+"@"+domain)
			}()
		}
		wg.Wait()
		for _, rs := range results {
			expect(t, one(t, rs), Sent, "2.0.0", "delivered to mailbox")
		}
	}
}
