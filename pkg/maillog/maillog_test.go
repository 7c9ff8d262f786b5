package maillog

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The helper process mode: when MAILLOG_HELPER_FILE is set, the test binary
// appends MAILLOG_HELPER_LINES records to that file and exits.
func TestMain(m *testing.M) {
	if path := os.Getenv("MAILLOG_HELPER_FILE"); path != "" {
		n, _ := strconv.Atoi(os.Getenv("MAILLOG_HELPER_LINES"))
		l, err := New(Options{SyslogName: "postfix", Program: "smtpd", File: path, Hostname: "vm2"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for i := 0; i < n; i++ {
			l.Info("proc %d line %d %s", os.Getpid(), i, strings.Repeat("x", 3000))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var fixed = time.Date(2026, time.November, 1, 22, 21, 1, 0, time.Local)

func fileLogger(t *testing.T, opts Options) (*Logger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "maillog")
	opts.File = path
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixed }
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end in a newline: %q", path, b)
	}
	return strings.Split(string(b[:len(b)-1]), "\n")
}

func TestFileLayout(t *testing.T) {
	l, path := fileLogger(t, Options{SyslogName: "postfix", Program: "qmgr", Hostname: "vm2.example.ops", PID: 1234})
	l.Info("3F2A81234B: from=<root@vm2.example.ops>, size=412, nrcpt=1 (queue active)")
	l.Warning("database %s is older than source file", "/etc/aliases.db")
	l.Error("bad")
	l.With("smtp").Info("sibling")
	want := []string{
		"Nov 01 22:21:01 vm2 postfix/qmgr[1234]: 3F2A81234B: from=<root@vm2.example.ops>, size=412, nrcpt=1 (queue active)",
		"Nov 01 22:21:01 vm2 postfix/qmgr[1234]: warning: database /etc/aliases.db is older than source file",
		"Nov 01 22:21:01 vm2 postfix/qmgr[1234]: error: bad",
		"Nov 01 22:21:01 vm2 postfix/smtp[1234]: sibling",
	}
	got := readLines(t, path)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFileLayoutRealClockAndPID(t *testing.T) {
	l, path := fileLogger(t, Options{SyslogName: "postfix", Program: "pickup", Hostname: "mail", Now: time.Now})
	l.Info("hello")
	re := regexp.MustCompile(`^[A-Z][a-z]{2} [0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] mail postfix/pickup\[` + strconv.Itoa(os.Getpid()) + `\]: hello$`)
	got := readLines(t, path)
	if len(got) != 1 || !re.MatchString(got[0]) {
		t.Fatalf("line %q does not match %s", got, re)
	}
}

func TestDovecotStyleTag(t *testing.T) {
	l, path := fileLogger(t, Options{SyslogName: "dovecot", Hostname: "vm", NoPID: true})
	l.With("").Info("imap-login: Login: user=<alice>")
	if got := readLines(t, path); len(got) != 1 || got[0] != "Nov 01 22:21:01 vm dovecot: imap-login: Login: user=<alice>" {
		t.Fatalf("got %q", got)
	}
}

func TestSanitize(t *testing.T) {
	l, path := fileLogger(t, Options{SyslogName: "postfix", Program: "qmgr", Hostname: "vm2", PID: 7})
	l.Info("tab\there ctl\x01x utf8 \xc3\xa9\r end\nnext")
	lu, pathu := fileLogger(t, Options{SyslogName: "postfix", Program: "qmgr", Hostname: "vm2", PID: 7, UTF8: true})
	lu.Info("utf8 \xc3\xa9 bad \xff\xfe")
	if got := readLines(t, path); len(got) != 1 || got[0] != "Nov 01 22:21:01 vm2 postfix/qmgr[7]: tab?here ctl?x utf8 ??? end?next" {
		t.Fatalf("got %q", got)
	}
	if got := readLines(t, pathu); len(got) != 1 || got[0] != "Nov 01 22:21:01 vm2 postfix/qmgr[7]: utf8 \xc3\xa9 bad ??" {
		t.Fatalf("got %q", got)
	}
}

func TestLongLineAndBinaryJunk(t *testing.T) {
	l, path := fileLogger(t, Options{SyslogName: "postfix", Program: "cleanup", Hostname: "vm2"})
	junk := make([]byte, 1<<20)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	l.Info("%s", junk)
	got := readLines(t, path)
	if len(got) != 1 || len(got[0]) < 1<<20 {
		t.Fatalf("want one line of at least 1 MB, got %d lines", len(got))
	}
	for i := 0; i < len(got[0]); i++ {
		if c := got[0][i]; c < 0x20 || c > 0x7e {
			t.Fatalf("byte %#x at %d reached the log", c, i)
		}
	}
}

func TestCreatesFileWithMode(t *testing.T) {
	_, path := fileLogger(t, Options{SyslogName: "postfix", FileMode: 0600})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestRefusesSymlinkAndDirectoryAndMissingDir(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0600)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	for _, path := range []string{link, dir, filepath.Join(dir, "missing", "maillog")} {
		_, err := New(Options{SyslogName: "postfix", File: path})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("New(File=%s) = %v, want an error naming the file", path, err)
		}
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Fatalf("wrote through a symlink: %q", b)
	}
}

func TestUnknownFacility(t *testing.T) {
	_, err := New(Options{SyslogName: "postfix", Facility: "bogus", File: filepath.Join(t.TempDir(), "l")})
	if err == nil || err.Error() != "unknown syslog facility: bogus" {
		t.Fatalf("err = %v", err)
	}
}

func TestFatalExits(t *testing.T) {
	l, path := fileLogger(t, Options{SyslogName: "postfix", Program: "master", Hostname: "vm2", PID: 1})
	code := -1
	exit = func(c int) { code = c }
	defer func() { exit = os.Exit }()
	l.Fatal("open %s: %s", "/etc/postfix/main.cf", "No such file or directory")
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if got := readLines(t, path); len(got) != 1 || got[0] != "Nov 01 22:21:01 vm2 postfix/master[1]: fatal: open /etc/postfix/main.cf: No such file or directory" {
		t.Fatalf("got %q", got)
	}
}

func TestStderrEcho(t *testing.T) {
	var buf bytes.Buffer
	l, _ := fileLogger(t, Options{SyslogName: "postfix", Program: "postmap", Stderr: &buf})
	l.Warning("x")
	if buf.String() != "postmap: warning: x\n" {
		t.Fatalf("stderr %q", buf.String())
	}
}

var recordRE = regexp.MustCompile(`^Nov 01 22:21:01 vm2 postfix/smtpd\[\d+\]: (g|proc) \d+ line \d+ (x+)$`)

func TestConcurrentGoroutinesDoNotInterleave(t *testing.T) {
	l, path := fileLogger(t, Options{SyslogName: "postfix", Program: "smtpd", Hostname: "vm2"})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				l.Info("g %d line %d %s", g, i, strings.Repeat("x", 3000))
			}
		}(g)
	}
	wg.Wait()
	got := readLines(t, path)
	if len(got) != 1600 {
		t.Fatalf("%d lines, want 1600", len(got))
	}
	for _, line := range got {
		if m := recordRE.FindStringSubmatch(line); m == nil || len(m[2]) != 3000 {
			t.Fatalf("torn line: %.120q", line)
		}
	}
}

func TestConcurrentProcessesDoNotInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	const procs, lines = 4, 300
	var cmds []*exec.Cmd
	for p := 0; p < procs; p++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "MAILLOG_HELPER_FILE="+path, "MAILLOG_HELPER_LINES="+strconv.Itoa(lines))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	got := readLines(t, path)
	if len(got) != procs*lines {
		t.Fatalf("%d lines, want %d", len(got), procs*lines)
	}
	re := regexp.MustCompile(`^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d vm2 postfix/smtpd\[(\d+)\]: proc (\d+) line \d+ (x+)$`)
	for _, line := range got {
		m := re.FindStringSubmatch(line)
		if m == nil || m[1] != m[2] || len(m[3]) != 3000 {
			t.Fatalf("torn line: %.120q", line)
		}
	}
}

func listen(t *testing.T, network string) (string, net.Listener, net.PacketConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	if network == "unixgram" {
		pc, err := net.ListenPacket("unixgram", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return path, nil, pc
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path, ln, nil
}

// TestSyslogNoLevelPrefix: Dovecot's lines name their own level; the
// level sets only the severity.
func TestSyslogNoLevelPrefix(t *testing.T) {
	sock, _, pc := listen(t, "unixgram")
	l, err := New(Options{SyslogName: "dovecot", NoPID: true, NoLevelPrefix: true, SyslogSocket: sock,
		FallbackFile: filepath.Join(t.TempDir(), "unused"), Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Error("lda(alice): Error: e")
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if w := "<19>Nov  1 22:21:01 dovecot: lda(alice): Error: e"; string(buf[:n]) != w {
		t.Fatalf("got %q, want %q", buf[:n], w)
	}
}

func TestSyslogDatagram(t *testing.T) {
	sock, _, pc := listen(t, "unixgram")
	l, err := New(Options{SyslogName: "postfix", Program: "qmgr", PID: 1234, SyslogSocket: sock,
		FallbackFile: filepath.Join(t.TempDir(), "unused"), Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Info("3F2A81234B: removed")
	l.Warning("w")
	l.Error("e")
	l.With("local").Log(LevelFatal, "f")
	l.Log(LevelPanic, "p")
	want := []string{
		"<22>Nov  1 22:21:01 postfix/qmgr[1234]: 3F2A81234B: removed",
		"<20>Nov  1 22:21:01 postfix/qmgr[1234]: warning: w",
		"<19>Nov  1 22:21:01 postfix/qmgr[1234]: error: e",
		"<18>Nov  1 22:21:01 postfix/local[1234]: fatal: f",
		"<18>Nov  1 22:21:01 postfix/qmgr[1234]: panic: p",
	}
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, w := range want {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != w {
			t.Fatalf("got %q, want %q", buf[:n], w)
		}
	}
	// A huge record is cut to fit one datagram rather than lost.
	if err := l.WriteRecord(LevelInfo, strings.Repeat("y", 1<<20)); err != nil {
		t.Fatal(err)
	}
	n, _, err := pc.ReadFrom(buf)
	if err != nil || n != MaxSyslogRecord {
		t.Fatalf("long record: %d bytes, %v", n, err)
	}
}

func TestSyslogFacilityLocal0(t *testing.T) {
	sock, _, pc := listen(t, "unixgram")
	l, err := New(Options{SyslogName: "dovecot", NoPID: true, Facility: "local0", SyslogSocket: sock, Now: func() time.Time { return fixed.AddDate(0, 0, 20) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Warning("x")
	buf := make([]byte, 1024)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "<132>Nov 21 22:21:01 dovecot: warning: x" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

func TestSyslogStreamSocket(t *testing.T) {
	sock, ln, _ := listen(t, "unix")
	l, err := New(Options{SyslogName: "postfix", Program: "qmgr", PID: 9, SyslogSocket: sock, Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.Info("a")
	l.Info("b")
	l.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got bytes.Buffer
	got.ReadFrom(c)
	if want := "<22>Nov  1 22:21:01 postfix/qmgr[9]: a\x00<22>Nov  1 22:21:01 postfix/qmgr[9]: b\x00"; got.String() != want {
		t.Fatalf("got %q, want %q", got.String(), want)
	}
}

func TestSyslogReconnectsAfterRestart(t *testing.T) {
	sock, _, pc := listen(t, "unixgram")
	l, err := New(Options{SyslogName: "postfix", Program: "qmgr", PID: 9, SyslogSocket: sock, Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pc.Close() // the syslog daemon restarts
	os.Remove(sock)
	pc2, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc2.Close()
	if err := l.WriteRecord(LevelInfo, "after restart"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	pc2.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc2.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "<22>Nov  1 22:21:01 postfix/qmgr[9]: after restart" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

func TestFallbackFileWithoutSyslogSocket(t *testing.T) {
	dir := t.TempDir()
	fallback := filepath.Join(dir, "maillog")
	l, err := New(Options{SyslogName: "postfix", Program: "qmgr", Hostname: "vm2", PID: 3,
		SyslogSocket: filepath.Join(dir, "no-such-socket"), FallbackFile: fallback, Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Info("to the file")
	if got := readLines(t, fallback); len(got) != 1 || got[0] != "Nov 01 22:21:01 vm2 postfix/qmgr[3]: to the file" {
		t.Fatalf("got %q", got)
	}
	fi, _ := os.Stat(fallback)
	if fi.Mode().Perm() != DefaultFileMode&^currentUmask() {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
}

func currentUmask() os.FileMode {
	f := filepath.Join(os.TempDir(), fmt.Sprintf("umask-probe-%d", os.Getpid()))
	defer os.Remove(f)
	os.WriteFile(f, nil, 0777)
	fi, _ := os.Stat(f)
	return 0777 &^ fi.Mode().Perm()
}

// A command whose maillog cannot be opened (a missing folder stands for a
// root-owned maillog_file, which root itself could still open) reports on
// stderr alone and carries on.
func TestForCommandWithoutMaillog(t *testing.T) {
	dir := t.TempDir()
	for _, file := range []string{filepath.Join(dir, "missing", "maillog"), dir} {
		var buf bytes.Buffer
		get := func(name string) string {
			return map[string]string{"maillog_file": file, "syslog_facility": "mail"}[name]
		}
		l := ForCommand(get, "sendmail", &buf)
		l.Warning("command exited with status %d", 1)
		if err := l.WriteRecord(LevelInfo, "x"); err == nil {
			t.Errorf("%s: WriteRecord without a maillog reports no error", file)
		}
		if err := l.Close(); err != nil {
			t.Errorf("%s: Close: %v", file, err)
		}
		if want := "sendmail: warning: command exited with status 1\nsendmail: x\n"; buf.String() != want {
			t.Errorf("%s: stderr %q, want %q", file, buf.String(), want)
		}
	}
	var buf bytes.Buffer
	l := ForCommand(func(name string) string {
		return map[string]string{"maillog_file": filepath.Join(dir, "l"), "syslog_facility": "bogus"}[name]
	}, "postdrop", &buf)
	l.Error("e")
	if buf.String() != "postdrop: error: e\n" {
		t.Errorf("bad facility: stderr %q", buf.String())
	}
}

// Records to a syslog socket that has gone away, or to a log file that
// can no longer be written, are dropped with an error; nothing panics.
func TestDestinationGoneMidRun(t *testing.T) {
	sock, _, pc := listen(t, "unixgram")
	l, err := New(Options{SyslogName: "postfix", Program: "sendmail", SyslogSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	os.Remove(sock)
	if err := l.WriteRecord(LevelInfo, "after /dev/log vanished"); err == nil {
		t.Error("no error writing to a vanished syslog socket")
	}
	l.Info("dropped")
	l.Close()
	l.Info("after Close")

	f, err := os.Open(filepath.Join(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	lf, err := New(Options{SyslogName: "postfix", Program: "postdrop", Inherited: f})
	if err != nil {
		t.Fatal(err)
	}
	if err := lf.WriteRecord(LevelWarning, "to a descriptor open for reading"); err == nil {
		t.Error("no error writing to an unwritable descriptor")
	}
	lf.Close()
	lf.Warning("after Close")
}
