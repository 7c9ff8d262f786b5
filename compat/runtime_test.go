package compat

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// runtimeMaildirCF makes local(8) deliver to ~/Maildir/.
const runtimeMaildirCF = "home_mailbox = Maildir/\n"

// runtimeSend submits one message with the instance's sendmail as root.
func runtimeSend(t *testing.T, inst *oracle.Instance, body string, args ...string) {
	t.Helper()
	res := oracle.Run(inst.Sendmail(args...), body)
	if res.Code != 0 {
		t.Fatalf("%s sendmail %v: exit %d: %s%s", inst.System, args, res.Code, res.Stdout, res.Stderr)
	}
}

// runtimeWaitLog polls the maillog until it has a line containing want,
// for up to wait, and returns it.
func runtimeWaitLog(t *testing.T, inst *oracle.Instance, want string, wait time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		log := inst.ReadMaillog()
		if strings.Contains(log, want) || time.Now().After(deadline) {
			return log
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRuntimePostfixDeliversToMaildir proves the live oracle works: the
// real Postfix, started privately, takes a message from its sendmail and
// its local(8) writes it to the user's ~/Maildir/new, logging each step.
func TestRuntimePostfixDeliversToMaildir(t *testing.T) {
	inst := oracle.StartPostfix(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF})
	u := oracle.AddUser(t, inst.HomeDir, "pfrt")
	runtimeSend(t, inst, "Subject: runtime\n\nhello from the oracle\n", u.Name)
	if n := oracle.WaitFiles(u.Maildir(), 1, 20*time.Second); n != 1 {
		t.Fatalf("%s: %d files after 20s, want 1\nmaillog:\n%s", u.Maildir(), n, inst.ReadMaillog())
	}
	entries, _ := os.ReadDir(u.Maildir())
	b, err := os.ReadFile(filepath.Join(u.Maildir(), entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "hello from the oracle") || !strings.Contains(string(b), "Delivered-To: "+u.Name+"@mail.example.test") {
		t.Errorf("delivered message lacks body or Delivered-To:\n%s", b)
	}
	log := runtimeWaitLog(t, inst, ": removed", 20*time.Second)
	for _, want := range []string{"postfix/pickup[", "postfix/cleanup[", "postfix/qmgr[", "postfix/local[", "status=sent (delivered to maildir)"} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}
}

// TestRuntimePostdoveDeliversToMaildir is the same run with postdove.
func TestRuntimePostdoveDeliversToMaildir(t *testing.T) {
	inst := oracle.StartPostdove(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF})
	u := oracle.AddUser(t, inst.HomeDir, "pdrt")
	runtimeSend(t, inst, "Subject: runtime\n\nhello from postdove\n", u.Name)
	if n := oracle.WaitFiles(u.Maildir(), 1, 20*time.Second); n != 1 {
		t.Fatalf("%s: %d files after 20s, want 1\nmaillog:\n%s", u.Maildir(), n, inst.ReadMaillog())
	}
	log := runtimeWaitLog(t, inst, ": removed", 20*time.Second)
	for _, want := range []string{"postfix/pickup[", "postfix/cleanup[", "postfix/qmgr[", "postfix/local[", "status=sent (delivered to maildir)"} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}
}

// runtimeSystems starts the real Postfix and postdove with the same
// options, Postfix first.
func runtimeSystems(t *testing.T, opt oracle.PostfixOptions) []*oracle.Instance {
	t.Helper()
	return []*oracle.Instance{oracle.StartPostfix(t, opt), oracle.StartPostdove(t, opt)}
}

// runtimeLogLine is one maillog line: program (postfix/qmgr), queue ID
// and text after "ID: ".
var runtimeLogLine = regexp.MustCompile(`^\S+ +\d+ \d\d:\d\d:\d\d \S+ (\S+)\[\d+\]: ([0-9A-F]{6,}): (.*)$`)

// runtimeNormalize replaces what differs between two runs with
// placeholders: names (queue IDs, the users tests make at random), the
// date in a Message-ID, delays and sizes.
func runtimeNormalize(s string, names map[string]string) string {
	for from, to := range names {
		s = strings.ReplaceAll(s, from, to)
	}
	for _, r := range []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`<\d{14}\.`), "<DATE."},
		{regexp.MustCompile(`\bdelay=[0-9.]+`), "delay=N"},
		{regexp.MustCompile(`\bdelays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+`), "delays=a/b/c/d"},
		{regexp.MustCompile(`\bsize=\d+`), "size=N"},
		{regexp.MustCompile(`/Maildir/tmp/\d+\.\S+:`), "/Maildir/tmp/UNIQUE:"},
	} {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return s
}

// runtimeLogShape returns the maillog lines about queue ID id as
// "program: text", normalized.
func runtimeLogShape(log, id string, names map[string]string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		m := runtimeLogLine.FindStringSubmatch(l)
		if m == nil || m[2] != id {
			continue
		}
		out = append(out, m[1]+": "+runtimeNormalize(m[3], names))
	}
	return out
}

var runtimeSizeField = regexp.MustCompile(`\bsize=(\d+)`)

// runtimeSize is the size= value in the first line about queue ID id that
// has one (qmgr's "from=<...>, size=N, nrcpt=N"), or -1.
func runtimeSize(log, id string) int {
	for _, l := range strings.Split(log, "\n") {
		m := runtimeLogLine.FindStringSubmatch(l)
		if m == nil || m[2] != id {
			continue
		}
		if sm := runtimeSizeField.FindStringSubmatch(m[3]); sm != nil {
			n, _ := strconv.Atoi(sm[1])
			return n
		}
	}
	return -1
}

// runtimeFirstID is the queue ID of the first message pickup logged.
func runtimeFirstID(log string) string {
	for _, l := range strings.Split(log, "\n") {
		if m := runtimeLogLine.FindStringSubmatch(l); m != nil && strings.HasSuffix(m[1], "/pickup") {
			return m[2]
		}
	}
	return ""
}

// runtimeHeaderNames lists a delivered message's header field names in
// order.
func runtimeHeaderNames(msg string) []string {
	var names []string
	for _, l := range strings.Split(msg, "\n") {
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			continue
		}
		if i := strings.IndexByte(l, ':'); i > 0 {
			names = append(names, l[:i])
		}
	}
	return names
}

// TestRuntimeMaillogShapeMatchesPostfix submits the same message to both
// systems and compares the maillog lines about it (program names, their
// order, and every key=value field with the values that can differ
// between runs normalized) and the delivered message's header fields.
func TestRuntimeMaillogShapeMatchesPostfix(t *testing.T) { runtimeMaillogShape(t, nil) }

// TestRuntimeSyslogShapeMatchesPostfix does the same with both systems
// logging through /dev/log to a real rsyslogd, as on CentOS.
func TestRuntimeSyslogShapeMatchesPostfix(t *testing.T) {
	if sys := oracle.UnderSyslog(t); sys != nil {
		runtimeMaillogShape(t, sys)
	}
}

func runtimeMaillogShape(t *testing.T, sys *oracle.Syslog) {
	var shapes [2][]string
	var headers [2][]string
	var sizes [2]int
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF, Syslog: sys}) {
		if sys != nil {
			// One rsyslogd file for both: each system's run alone.
			os.Truncate(sys.File, 0)
		}
		u := oracle.AddUser(t, inst.HomeDir, "rtlog")
		runtimeSend(t, inst, "Subject: shape\nFrom: root\n\nsame message for both\n", u.Name)
		if n := oracle.WaitFiles(u.Maildir(), 1, 20*time.Second); n != 1 {
			t.Fatalf("%s: no delivery to %s\n%s", inst.System, u.Maildir(), inst.ReadMaillog())
		}
		log := runtimeWaitLog(t, inst, ": removed", 20*time.Second)
		id := runtimeFirstID(log)
		if id == "" {
			t.Fatalf("%s: no pickup line in maillog:\n%s", inst.System, log)
		}
		shapes[i] = runtimeLogShape(log, id, map[string]string{u.Name: "USER", id: "ID"})
		entries, _ := os.ReadDir(u.Maildir())
		b, err := os.ReadFile(filepath.Join(u.Maildir(), entries[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		headers[i] = runtimeHeaderNames(string(b))
		// The queue ID is in the content twice (Received:, Message-Id:)
		// and its length varies with the queue file's inode number.
		sizes[i] = runtimeSize(log, id) - 2*len(id)
	}
	if strings.Join(shapes[0], "\n") != strings.Join(shapes[1], "\n") {
		t.Errorf("maillog lines differ\npostfix:\n\t%s\npostdove:\n\t%s", strings.Join(shapes[0], "\n\t"), strings.Join(shapes[1], "\n\t"))
	}
	if sizes[0] != sizes[1] || sizes[0] <= 0 {
		t.Errorf("qmgr size= (less the queue ID's length twice) differs: postfix %d, postdove %d", sizes[0], sizes[1])
	}
	if strings.Join(headers[0], " ") != strings.Join(headers[1], " ") {
		t.Errorf("delivered header fields differ\npostfix:  %s\npostdove: %s", strings.Join(headers[0], " "), strings.Join(headers[1], " "))
	}
}

// runtimeTempfailScript writes a command that fails with EX_TEMPFAIL (75)
// where local(8)'s default_privs user can run it, and returns its path.
func runtimeTempfailScript(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "runtime-tempfail-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0755)
	path := filepath.Join(dir, "tempfail")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 75\n"), 0755); err != nil {
		t.Fatal(err)
	}
	return path
}

// runtimeQueueLine is a mailq message line: ID, status mark, size,
// arrival time, sender.
var runtimeQueueLine = regexp.MustCompile(`^[0-9A-F]{6,}([*!]?) +\d+ [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d  (.*)$`)

// runtimeQueueShape normalizes mailq output: the message line keeps its
// status mark and sender only (ID, size and time vary); every other line
// is kept as is.
func runtimeQueueShape(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if m := runtimeQueueLine.FindStringSubmatch(l); m != nil {
			lines[i] = "ID" + m[1] + " SIZE DATE  " + m[2]
		}
	}
	return strings.Join(lines, "\n")
}

// TestRuntimeHeldMailqMatchesPostfix defers a message in both systems
// (an alias whose command exits 75), puts it on hold with postsuper -h
// ALL and compares postsuper's answer and log line and the mailq listing.
func TestRuntimeHeldMailqMatchesPostfix(t *testing.T) {
	script := runtimeTempfailScript(t)
	opt := oracle.PostfixOptions{MainCF: runtimeMaildirCF, Aliases: "root: /dev/null\nholdme: |" + script + "\n"}
	type result struct {
		postsuper oracle.Result
		held      bool
		mailq     oracle.Result
	}
	var res [2]result
	for i, inst := range runtimeSystems(t, opt) {
		runtimeSend(t, inst, "Subject: hold me\n\nheld\n", "holdme")
		if log := runtimeWaitLog(t, inst, "status=deferred", 20*time.Second); !strings.Contains(log, "status=deferred (temporary failure)") {
			t.Fatalf("%s: no deferral of holdme:\n%s", inst.System, log)
		}
		res[i].postsuper = oracle.Run(inst.Command("postsuper", "-h", "ALL"), "")
		res[i].held = strings.Contains(runtimeWaitLog(t, inst, "/postsuper[", 3*time.Second), "postfix/postsuper[")
		res[i].mailq = oracle.Run(inst.Command("mailq"), "")
	}
	if res[0].postsuper != res[1].postsuper {
		t.Errorf("postsuper -h ALL: postfix %+v, postdove %+v", res[0].postsuper, res[1].postsuper)
	}
	if !res[0].held || !res[1].held {
		t.Errorf("postsuper's \"Placed on hold\" line in the maillog: postfix %v, postdove %v", res[0].held, res[1].held)
	}
	theirs, ours := res[0].mailq, res[1].mailq
	if theirs.Code != ours.Code || theirs.Stderr != ours.Stderr {
		t.Errorf("mailq exit/stderr: postfix %d %q, postdove %d %q", theirs.Code, theirs.Stderr, ours.Code, ours.Stderr)
	}
	if !strings.Contains(theirs.Stdout, "!") {
		t.Fatalf("postfix mailq shows no held message:\n%s", theirs.Stdout)
	}
	if a, b := runtimeQueueShape(theirs.Stdout), runtimeQueueShape(ours.Stdout); a != b {
		t.Errorf("mailq differs\npostfix:\n%s\npostdove:\n%s", a, b)
	}
}

// TestRuntimeMaildirNotWritableMatchesPostfix delivers to a user whose
// home directory the user cannot write (a lab mistake: home owned by
// root), so ~/Maildir cannot be made, and compares what local(8) logs
// about the message and its outcome (bounced or deferred, DSN, reason).
func TestRuntimeMaildirNotWritableMatchesPostfix(t *testing.T) {
	var shapes [2][]string
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}) {
		u := oracle.AddUser(t, inst.HomeDir, "rtperm")
		if err := os.Chown(u.Home, 0, 0); err != nil {
			t.Fatal(err)
		}
		runtimeSend(t, inst, "Subject: nowhere\n\nno maildir\n", u.Name)
		log := runtimeWaitLog(t, inst, "status=", 20*time.Second)
		id := runtimeFirstID(log)
		for _, l := range runtimeLogShape(log, id, map[string]string{u.Name: "USER", id: "ID", inst.HomeDir: "HOME"}) {
			if strings.HasPrefix(l, "postfix/local:") {
				shapes[i] = append(shapes[i], l)
			}
		}
	}
	if len(shapes[0]) == 0 || strings.Join(shapes[0], "\n") != strings.Join(shapes[1], "\n") {
		t.Errorf("local(8) lines differ\npostfix:\n\t%s\npostdove:\n\t%s", strings.Join(shapes[0], "\n\t"), strings.Join(shapes[1], "\n\t"))
	}
}

// runtimeLocalLines returns local(8)'s lines about the message(s) sent,
// normalized with names (and each queue ID as ID), sorted: recipients of
// one message are delivered in parallel.
func runtimeLocalLines(log string, names map[string]string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		m := runtimeLogLine.FindStringSubmatch(l)
		if m == nil || !strings.HasSuffix(m[1], "/local") {
			continue
		}
		n := map[string]string{m[2]: "ID"}
		for k, v := range names {
			n[k] = v
		}
		out = append(out, m[1]+": "+runtimeNormalize(m[3], n))
	}
	sort.Strings(out)
	return out
}

// runtimeWithout drops the lines containing s.
func runtimeWithout(lines []string, s string) []string {
	var out []string
	for _, l := range lines {
		if !strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// runtimeWaitCount polls the maillog until want occurs n times.
func runtimeWaitCount(inst *oracle.Instance, want string, n int, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		log := inst.ReadMaillog()
		if strings.Count(log, want) >= n || time.Now().After(deadline) {
			return log
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runtimeCompareLines(t *testing.T, what string, lines [2][]string) {
	t.Helper()
	if len(lines[0]) == 0 || strings.Join(lines[0], "\n") != strings.Join(lines[1], "\n") {
		t.Errorf("%s: local(8) lines differ\npostfix:\n\t%s\npostdove:\n\t%s", what, strings.Join(lines[0], "\n\t"), strings.Join(lines[1], "\n\t"))
	}
}

// TestRuntimeEmptyAliasMapsMatchesPostfix sets "alias_maps =": no alias
// tables at all, so a user's mail is delivered (no "alias database
// unavailable" deferral).
func TestRuntimeEmptyAliasMapsMatchesPostfix(t *testing.T) {
	var lines [2][]string
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF + "alias_maps =\n"}) {
		u := oracle.AddUser(t, inst.HomeDir, "rtnoal")
		runtimeSend(t, inst, "Subject: no aliases\n\nbody\n", u.Name)
		log := runtimeWaitLog(t, inst, "status=", 20*time.Second)
		lines[i] = runtimeLocalLines(log, map[string]string{u.Name: "USER"})
	}
	runtimeCompareLines(t, "alias_maps =", lines)
	if len(lines[0]) != 1 || !strings.Contains(lines[0][0], "status=sent (delivered to maildir)") {
		t.Errorf("postfix did not deliver: %q", lines[0])
	}
}

// TestRuntimePipeAliasesMatchPostfix sends one message to aliases that
// pipe into commands of every kind local(8) distinguishes: shell builtins
// and metacharacters (run by /bin/sh -c), plain commands executed
// directly, a program that does not exist either way, output, sysexits
// codes.
func TestRuntimePipeAliasesMatchPostfix(t *testing.T) {
	targets := map[string]string{
		"holdme":  "|exit 75",
		"fail1":   "|exit 1",
		"ok0":     "|exit 0",
		"nouser":  "|exit 67",
		"output":  "|echo some output; exit 1",
		"nocmd":   "|nonexistentcmd",
		"nopath":  "|/nonexistent/cmd arg",
		"direct":  "|/bin/true arg",
		"noexec":  "|/etc/passwd",
		"shelled": "|/nonexistent/a#b",
	}
	aliases := "root: /dev/null\npostmaster: root\n"
	var rcpts []string
	for name, target := range targets {
		aliases += name + ": \"" + target + "\"\n"
		rcpts = append(rcpts, name)
	}
	var lines [2][]string
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF, Aliases: aliases}) {
		runtimeSend(t, inst, "Subject: pipes\n\nbody\n", rcpts...)
		log := runtimeWaitCount(inst, "relay=local", len(rcpts), 20*time.Second)
		// Postfix's execvp failures are logged by its child process,
		// without a queue ID: only the delivery lines are compared, less
		// the bounce's delivery to root, which may come later.
		lines[i] = runtimeWithout(runtimeLocalLines(log, nil), "to=<root@")
	}
	runtimeCompareLines(t, "pipe aliases", lines)
	if len(lines[0]) != len(rcpts) {
		t.Errorf("postfix logged %d local lines, want %d", len(lines[0]), len(rcpts))
	}
}

// runtimeDSNFields returns the per-recipient fields of the first
// delivery status notification in a Maildir's new/ folder.
func runtimeDSNFields(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || !strings.Contains(string(b), "message/delivery-status") {
			continue
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			for _, f := range []string{"Final-Recipient:", "Original-Recipient:", "Action:", "Status:", "Diagnostic-Code:"} {
				if strings.HasPrefix(l, f) {
					out = append(out, l)
				}
			}
		}
		return out
	}
	return nil
}

// TestRuntimeUnknownUserBounceMatchesPostfix sends from a local user to
// one that does not exist and compares local(8)'s line and the DSN that
// comes back.
func TestRuntimeUnknownUserBounceMatchesPostfix(t *testing.T) {
	var lines [2][]string
	var dsn [2][]string
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}) {
		u := oracle.AddUser(t, inst.HomeDir, "rtsnd")
		runtimeSend(t, inst, "Subject: to nobody\n\nbody\n", "-f", u.Name, "nosuchuser")
		if n := oracle.WaitFiles(u.Maildir(), 1, 20*time.Second); n != 1 {
			t.Fatalf("%s: no bounce in %s\n%s", inst.System, u.Maildir(), inst.ReadMaillog())
		}
		log := runtimeWaitCount(inst, "relay=local", 2, 20*time.Second)
		lines[i] = runtimeLocalLines(log, map[string]string{u.Name: "USER"})
		dsn[i] = runtimeDSNFields(t, u.Maildir())
	}
	runtimeCompareLines(t, "unknown user", lines)
	if len(dsn[0]) == 0 || strings.Join(dsn[0], "\n") != strings.Join(dsn[1], "\n") {
		t.Errorf("DSN fields differ\npostfix:\n\t%s\npostdove:\n\t%s", strings.Join(dsn[0], "\n\t"), strings.Join(dsn[1], "\n\t"))
	}
}

// TestRuntimeMailboxCommandExitMatchesPostfix delivers through a
// mailbox_command that prints a line and exits with 0, 75 or 1, and
// compares local(8)'s lines (status, DSN, text with the command output).
func TestRuntimeMailboxCommandExitMatchesPostfix(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "runtime-mbc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0755)
	script := filepath.Join(dir, "mbc")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho output of mbc\nexit $(cat \"$HOME/code\")\n"), 0755); err != nil {
		t.Fatal(err)
	}
	codes := []string{"0", "75", "1"}
	var lines [2][]string
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF + "mailbox_command = " + script + "\n"}) {
		names := map[string]string{script: "SCRIPT"}
		var rcpts []string
		for _, c := range codes {
			u := oracle.AddUser(t, inst.HomeDir, "rtmbc")
			if err := os.WriteFile(filepath.Join(u.Home, "code"), []byte(c+"\n"), 0644); err != nil {
				t.Fatal(err)
			}
			names[u.Name] = "USER" + c
			rcpts = append(rcpts, u.Name)
		}
		runtimeSend(t, inst, "Subject: mailbox_command\n\nbody\n", rcpts...)
		log := runtimeWaitCount(inst, "relay=local", len(codes), 20*time.Second)
		lines[i] = runtimeWithout(runtimeLocalLines(log, names), "to=<root@") // the bounce to root
	}
	runtimeCompareLines(t, "mailbox_command", lines)
}
