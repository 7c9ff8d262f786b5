package mbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

var arrival = time.Date(2026, time.November, 1, 22, 21, 1, 0, time.Local)

var fast = LockTimeouts{Attempts: 500, Delay: 5 * time.Millisecond}

func create() Options { return Options{Create: true, UID: -1, GID: -1, LockTimeouts: fast} }

func deliver(t *testing.T, path, sender, msg string, opts Options) {
	t.Helper()
	if err := Deliver(path, sender, arrival, strings.NewReader(msg), opts); err != nil {
		t.Fatal(err)
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

func TestLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alice")
	opts := create()
	opts.Headers = []string{"Return-Path: <bob@example.org>", "Delivered-To: alice@example.com"}
	deliver(t, path, "bob@example.org", "Subject: hi\r\n\r\nFrom x\r\nline\r\nlast line without newline", opts)
	deliver(t, path, "", "Subject: bounce\n\nFrom: y\n", create())
	want := "From bob@example.org  Sun Nov  1 22:21:01 2026\n" +
		"Return-Path: <bob@example.org>\nDelivered-To: alice@example.com\n" +
		"Subject: hi\n\n>From x\nline\nlast line without newline\n\n" +
		"From MAILER-DAEMON  Sun Nov  1 22:21:01 2026\n" +
		"Subject: bounce\n\nFrom: y\n\n"
	if got := read(t, path); got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0600 {
		t.Fatalf("new mailbox mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Fatalf("dotlock left behind: %v", err)
	}
}

func TestFromLineQuotesOddSenders(t *testing.T) {
	for in, want := range map[string]string{
		"a.b@x.org":        "From a.b@x.org  Sun Nov  1 22:21:01 2026",
		"john doe@x.org":   `From "john doe"@x.org  Sun Nov  1 22:21:01 2026`,
		"we\"ird@x":        `From "we\"ird"@x  Sun Nov  1 22:21:01 2026`,
		"evil\n@x":         `From "evil?"@x  Sun Nov  1 22:21:01 2026`,
		"nodomain":         "From nodomain  Sun Nov  1 22:21:01 2026",
		"a@x y":            `From "a"@x?y  Sun Nov  1 22:21:01 2026`,
		"":                 "From MAILER-DAEMON  Sun Nov  1 22:21:01 2026",
		"user+tag@example": "From user+tag@example  Sun Nov  1 22:21:01 2026",
	} {
		if got := FromLine(in, arrival); got != want {
			t.Errorf("FromLine(%q) = %q, want %q", in, got, want)
		}
	}
	if got := FromLine("a@b", time.Date(2026, time.November, 21, 9, 5, 3, 0, time.Local)); got != "From a@b  Sat Nov 21 09:05:03 2026" {
		t.Errorf("two-digit day: %q", got)
	}
}

func snail(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("s-nail")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("s-nail not installed")
		}
		t.Skip("s-nail not installed (apt-get install -y s-nail)")
	}
	cmd := exec.Command(bin, append([]string{"-:/", "-#", "-R"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "LC_ALL=C")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("s-nail %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestSnailReadsTwoMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	deliver(t, path, "root@vm2.example.ops", "From: root@vm2.example.ops\r\nSubject: first\r\n\r\nFrom x\r\nhello\r\n", create())
	deliver(t, path, "bob@example.org", "From: bob@example.org\nSubject: second\n\nFrom the start\n", create())
	out := snail(t, "-H", "-f", path)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "first") || !strings.Contains(lines[1], "second") {
		t.Fatalf("s-nail -H listed:\n%s", out)
	}
	body := snail(t, "-Y", "print 1", "-Y", "print 2", "-Y", "xit", "-f", path)
	for _, want := range []string{"\n>From x\nhello\n", "\n>From the start\n"} {
		if !strings.Contains(body, want) {
			t.Fatalf("s-nail print lacks %q:\n%s", want, body)
		}
	}
}

// failAfter returns data, then fails.
func failAfter(data string) io.Reader {
	return io.MultiReader(strings.NewReader(data), iotest.ErrReader(errors.New("queue file read error")))
}

func TestFailedReadLeavesMailboxUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	deliver(t, path, "a@b", "Subject: one\n\nbody\n", create())
	before := read(t, path)
	big := strings.Repeat("partial line of a message\n", 10000)
	err := Deliver(path, "a@b", arrival, failAfter(big), create())
	var me *Error
	if !errors.As(err, &me) || !me.Temporary() || me.DSN != "4.3.0" || !strings.Contains(err.Error(), "error reading message: queue file read error") {
		t.Fatalf("err = %#v", err)
	}
	if got := read(t, path); got != before {
		t.Fatalf("mailbox changed: %d bytes, was %d", len(got), len(before))
	}
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Fatalf("dotlock left behind: %v", err)
	}
}

func TestSizeLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	opts := create()
	opts.SizeLimit = 200
	deliver(t, path, "a@b", "Subject: small\n\nx\n", opts)
	before := read(t, path)
	err := Deliver(path, "a@b", arrival, strings.NewReader("Subject: big\n\n"+strings.Repeat("y", 300)+"\n"), opts)
	var me *Error
	if !errors.As(err, &me) || me.DSN != "5.2.2" || me.Temporary() || !strings.HasSuffix(err.Error(), "error writing message: File too large") {
		t.Fatalf("err = %v", err)
	}
	if read(t, path) != before {
		t.Fatal("mailbox changed")
	}
}

func TestRefusesUnsafeMailboxes(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("secret\n"), 0600)
	link := filepath.Join(dir, "link")
	os.Symlink(victim, link)
	hard := filepath.Join(dir, "hard")
	os.Link(victim, hard)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(dir, "nowhere"), dangling)
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0600)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0700)
	for path, reason := range map[string]string{
		link:                                  "file is a symbolic link",
		dangling:                              "file is a symbolic link",
		hard:                                  "file has 2 hard links",
		fifo:                                  "file is not a regular file",
		sub:                                   "file is not a regular file",
		filepath.Join(dir, "missing", "mbox"): "cannot access mailbox directory: No such file or directory",
	} {
		err := Deliver(path, "a@b", arrival, strings.NewReader("x\n"), Options{Create: true, UID: -1, GID: -1, Locks: &Locks{Fcntl: true}, LockTimeouts: fast})
		if err == nil || err.Error() != "cannot update mailbox "+path+". "+reason {
			t.Errorf("%s: err = %v, want reason %q", path, err, reason)
		}
	}
	if read(t, victim) != "secret\n" {
		t.Fatal("victim changed")
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Fatal("followed a dangling symlink")
	}
	err := Deliver(filepath.Join(dir, "absent"), "a@b", arrival, strings.NewReader("x\n"), Options{Locks: &Locks{}})
	if err == nil || !strings.HasSuffix(err.Error(), "cannot open file: No such file or directory") {
		t.Fatalf("missing mailbox without Create: %v", err)
	}
}

func TestRefusesSpoolSymlinkNotOwnedByRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the link to another user")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0755)
	spool := filepath.Join(dir, "spool")
	os.Symlink(real, spool)
	if err := os.Lchown(spool, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := Deliver(filepath.Join(spool, "alice"), "a@b", arrival, strings.NewReader("x\n"), create())
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link not owned by root") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(real, "alice")); !os.IsNotExist(err) {
		t.Fatal("delivered through the link")
	}
	os.Lchown(spool, 0, 0)
	deliver(t, filepath.Join(spool, "alice"), "a@b", "x\n", create())
}

func TestCreateChownsToRecipient(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	path := filepath.Join(t.TempDir(), "nobody")
	opts := create()
	opts.UID, opts.GID, opts.Mode = 65534, 65534, 0660
	deliver(t, path, "a@b", "x\n", opts)
	fi, _ := os.Stat(path)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 65534 || fi.Mode().Perm()&^0660 != 0 || fi.Mode().Perm()&0600 != 0600 {
		t.Fatalf("owner %d:%d mode %v", st.Uid, st.Gid, fi.Mode().Perm())
	}
}

func TestStaleDotlockIsRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(path+".lock", nil, 0)
	old := time.Now().Add(-600 * time.Second)
	os.Chtimes(path+".lock", old, old)
	deliver(t, path, "a@b", "x\n", create())
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Fatal("stale lock survived")
	}
}

func TestBusyDotlockIsTemporary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(path+".lock", nil, 0)
	opts := create()
	opts.LockTimeouts = LockTimeouts{Attempts: 3, Delay: time.Millisecond}
	err := Deliver(path, "a@b", arrival, strings.NewReader("x\n"), opts)
	var me *Error
	if !errors.As(err, &me) || me.DSN != "4.2.0" || !me.Temporary() {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatal("removed someone else's fresh lock")
	}
}

func TestFcntlLockExcludesOtherHolders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	os.WriteFile(path, nil, 0600)
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	defer f.Close()
	if err := lockFile(f, Locks{Fcntl: true, Flock: true}, fast); err != nil {
		t.Fatal(err)
	}
	opts := Options{Locks: &Locks{Fcntl: true}, LockTimeouts: LockTimeouts{Attempts: 2, Delay: time.Millisecond}}
	err := Deliver(path, "a@b", arrival, strings.NewReader("x\n"), opts)
	if err == nil || !strings.HasSuffix(err.Error(), "unable to lock for exclusive access: resource temporarily unavailable") {
		t.Fatalf("err = %v", err)
	}
	opts.Locks = &Locks{Flock: true}
	if err := Deliver(path, "a@b", arrival, strings.NewReader("x\n"), opts); err == nil {
		t.Fatal("flock not honoured")
	}
	unlockFile(f, Locks{Fcntl: true, Flock: true})
	if err := Deliver(path, "a@b", arrival, strings.NewReader("x\n"), opts); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWritersKeepMessagesIntact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	for _, locks := range []Locks{{Fcntl: true}, {Dotlock: true}, DefaultLocks} {
		os.Remove(path)
		var wg sync.WaitGroup
		const writers, each = 4, 25
		body := strings.Repeat("0123456789abcdef", 4096) // 64 KiB: many write(2)s per message
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				opts := create()
				opts.Locks = &locks
				for i := 0; i < each; i++ {
					msg := fmt.Sprintf("Subject: w%d m%d\n\n%s\n", w, i, body)
					if err := Deliver(path, "a@b", arrival, strings.NewReader(msg), opts); err != nil {
						t.Error(err)
					}
				}
			}(w)
		}
		wg.Wait()
		msgs := strings.Split(read(t, path), "From a@b  Sun Nov  1 22:21:01 2026\n")
		if len(msgs) != writers*each+1 || msgs[0] != "" {
			t.Fatalf("%+v: %d messages, want %d", locks, len(msgs)-1, writers*each)
		}
		for _, m := range msgs[1:] {
			var w, i int
			if n, _ := fmt.Sscanf(m, "Subject: w%d m%d\n", &w, &i); n != 2 || !strings.HasSuffix(m, "\n\n"+body+"\n\n") {
				t.Fatalf("%+v: torn message %.60q", locks, m)
			}
		}
	}
}

func TestParseLocks(t *testing.T) {
	l, err := ParseLocks("fcntl, dotlock")
	if err != nil || l != DefaultLocks {
		t.Fatalf("%+v %v", l, err)
	}
	l, err = ParseLocks("flock")
	if err != nil || l != (Locks{Flock: true}) {
		t.Fatalf("%+v %v", l, err)
	}
	if _, err := ParseLocks("fcntl, lockf"); err == nil || err.Error() != `invalid mailbox_delivery_lock setting: "lockf"` {
		t.Fatalf("err = %v", err)
	}
}
