package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

func opts() Options { return Options{UID: -1, GID: -1, Hostname: "vm"} }

func list(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

var nameRE = regexp.MustCompile(`^(\d+)\.M(\d+)P(\d+)(Q\d+)?\.vm,S=(\d+),W=(\d+)$`)

func TestRoundTrip(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	msg := "Subject: t\r\nFrom: a@b\r\n\r\nbody\r\nline2\r\n"
	path, err := Deliver(md, strings.NewReader(msg), opts())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != filepath.Join(md, "new") {
		t.Fatalf("delivered to %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "Subject: t\nFrom: a@b\n\nbody\nline2\n" {
		t.Fatalf("content %q", b)
	}
	m := nameRE.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		t.Fatalf("name %q is not in Dovecot's form", filepath.Base(path))
	}
	// The sizes Dovecot wrote for this very message: S=33, W=38.
	if m[5] != "33" || m[6] != "38" || m[3] != strconv.Itoa(os.Getpid()) {
		t.Fatalf("name %q: want S=33,W=38 and our pid", filepath.Base(path))
	}
	if sec, _ := strconv.ParseInt(m[1], 10, 64); time.Since(time.Unix(sec, 0)) > time.Minute {
		t.Fatalf("time %s is not now", m[1])
	}
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		fi, err := os.Stat(filepath.Join(md, sub))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0700 {
			t.Fatalf("%s: %v %v", sub, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0600 {
		t.Fatalf("file mode %v", fi.Mode().Perm())
	}
	if n := list(t, filepath.Join(md, "tmp")); len(n) != 0 {
		t.Fatalf("tmp/ leftovers %v", n)
	}
}

func TestNameLayout(t *testing.T) {
	at := time.Unix(1795300197, 239099123)
	if got := BaseName(at, 17809, 1, "vm"); got != "1795300197.M239099P17809.vm" {
		t.Fatalf("got %q", got)
	}
	if got := BaseName(at, 17809, 3, "my/host:x"); got != `1795300197.M239099P17809Q3.my\057host\072x` {
		t.Fatalf("got %q", got)
	}
	md := filepath.Join(t.TempDir(), "Maildir")
	o := opts()
	o.Hostname = "a/b:c"
	o.Now = func() time.Time { return at }
	path, err := Deliver(md, strings.NewReader("x"), o)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^1795300197\.M239099P\d+(Q\d+)?\.a\\057b\\072c,S=1,W=1$`).MatchString(filepath.Base(path)) {
		t.Fatalf("name %q", filepath.Base(path))
	}
}

func TestSizesMatchFile(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	for _, msg := range []string{"", "no newline", "a\nb\r\nc\rd\r\n", strings.Repeat("long line ", 200000) + "\r\n", "\x00\xff binary\r\n\r\n"} {
		path, err := Deliver(md, strings.NewReader(msg), opts())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		m := nameRE.FindStringSubmatch(filepath.Base(path))
		if m == nil || m[5] != strconv.Itoa(len(b)) {
			t.Fatalf("%.40q: name %q, file has %d bytes", msg, filepath.Base(path), len(b))
		}
		if w := len(b) + strings.Count(string(b), "\n") - strings.Count(string(b), "\r\n"); m[6] != strconv.Itoa(w) {
			t.Fatalf("%.40q: W=%s, want %d", msg, m[6], w)
		}
	}
}

func TestFlagsDeliverToCur(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	o := opts()
	o.Flags = "SFS"
	path, err := Deliver(md, strings.NewReader("Subject: x\n\n"), o)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != filepath.Join(md, "cur") || !strings.HasSuffix(path, ",S=12,W=14:2,FS") {
		t.Fatalf("path %s", path)
	}
	if n := list(t, filepath.Join(md, "new")); len(n) != 0 {
		t.Fatalf("new/ has %v", n)
	}
	o.Flags = "S:/"
	if _, err := Deliver(md, strings.NewReader("x"), o); err == nil {
		t.Fatal("bad flags accepted")
	}
}

func TestUniqueUnderConcurrency(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	fixed := time.Unix(1795300197, 0) // same microsecond for everyone
	o := opts()
	o.Now = func() time.Time { return fixed }
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := Deliver(md, strings.NewReader(fmt.Sprintf("Subject: %d\n\n", i)), o); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	names := list(t, filepath.Join(md, "new"))
	if len(names) != 1000 {
		t.Fatalf("%d files in new/, want 1000", len(names))
	}
	seen := map[string]bool{}
	for _, n := range names {
		b, _ := os.ReadFile(filepath.Join(md, "new", n))
		seen[string(b)] = true
	}
	if len(seen) != 1000 {
		t.Fatalf("%d distinct messages, want 1000", len(seen))
	}
	if n := list(t, filepath.Join(md, "tmp")); len(n) != 0 {
		t.Fatalf("tmp/ leftovers %d", len(n))
	}
}

func TestFailedReadLeavesNothing(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	r := io.MultiReader(strings.NewReader(strings.Repeat("partial\r\n", 50000)), iotest.ErrReader(errors.New("lost connection")))
	_, err := Deliver(md, r, opts())
	var me *Error
	if !errors.As(err, &me) || !me.Temporary() || !strings.Contains(err.Error(), "lost connection") {
		t.Fatalf("err = %v", err)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if n := list(t, filepath.Join(md, sub)); len(n) != 0 {
			t.Fatalf("%s/ has %v", sub, n)
		}
	}
}

func TestRefusesSymlinkedSubfolder(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	elsewhere := filepath.Join(dir, "elsewhere")
	os.Mkdir(md, 0700)
	os.Mkdir(elsewhere, 0700)
	os.Symlink(elsewhere, filepath.Join(md, "tmp"))
	_, err := Deliver(md, strings.NewReader("x"), opts())
	if err == nil || !strings.Contains(err.Error(), filepath.Join(md, "tmp")) {
		t.Fatalf("err = %v", err)
	}
	if n := list(t, elsewhere); len(n) != 0 {
		t.Fatalf("wrote through the link: %v", n)
	}
}

func TestBadTargets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0600)
	for _, md := range []string{file, filepath.Join(dir, "missing", "Maildir"), filepath.Join(file, "Maildir")} {
		if _, err := Deliver(md, strings.NewReader("x"), opts()); err == nil || !strings.Contains(err.Error(), md) {
			t.Errorf("%s: err = %v", md, err)
		}
	}
}

func TestOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	o := Options{UID: 65534, GID: 65534, Hostname: "vm"}
	path, err := Deliver(md, strings.NewReader("x\n"), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{md, filepath.Join(md, "tmp"), filepath.Join(md, "new"), filepath.Join(md, "cur"), path} {
		fi, _ := os.Stat(p)
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
			t.Fatalf("%s owned by %d:%d", p, st.Uid, st.Gid)
		}
	}
	// A root-owned folder is not the recipient's: refuse it.
	rootMD := filepath.Join(dir, "RootMaildir")
	os.Mkdir(rootMD, 0700)
	if _, err := Deliver(rootMD, strings.NewReader("x\n"), o); err == nil || !strings.Contains(err.Error(), "not owned by uid 65534") {
		t.Fatalf("err = %v", err)
	}
	var me *Error
	if _, err := Deliver(rootMD, strings.NewReader("x\n"), o); !errors.As(err, &me) || me.Temporary() {
		t.Fatalf("ownership error should be permanent: %v", err)
	}
}

// TestErrorNamesTmpFile checks that a failure before the message file
// exists names the tmp/ file the delivery meant to create (what local(8)
// reports), and a later one does not.
func TestErrorNamesTmpFile(t *testing.T) {
	top := t.TempDir()
	file := filepath.Join(top, "home")
	os.WriteFile(file, nil, 0644)
	dir := filepath.Join(file, "Maildir") // under a regular file: ENOTDIR
	_, err := Deliver(dir, strings.NewReader("x\n"), opts())
	var me *Error
	if !errors.As(err, &me) || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("err %v", err)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(dir) + `/tmp/\d+\.M\d+P\d+(Q\d+)?\.vm$`).MatchString(me.Tmp) {
		t.Errorf("Tmp %q", me.Tmp)
	}
	// tmp/ is a file: the folders cannot be opened.
	dir = filepath.Join(top, "Maildir2")
	os.Mkdir(dir, 0700)
	os.WriteFile(filepath.Join(dir, "tmp"), nil, 0600)
	if _, err := Deliver(dir, strings.NewReader("x\n"), opts()); !errors.As(err, &me) || !strings.HasPrefix(me.Tmp, filepath.Join(dir, "tmp")+"/") {
		t.Errorf("tmp/ a file: %v (Tmp %q)", err, me.Tmp)
	}
	// A failed read happens after the file was made: no Tmp.
	dir = filepath.Join(top, "Maildir3")
	_, err = Deliver(dir, iotest.ErrReader(errors.New("boom")), opts())
	if !errors.As(err, &me) || me.Tmp != "" {
		t.Errorf("read error: %v (Tmp %q)", err, me.Tmp)
	}
}

// TestNameLess: new files get UIDs in the order of the times in their
// names, numerically (".M96844" before ".M105698"), as Dovecot gives them.
func TestNameLess(t *testing.T) {
	names := []string{"1795769620.M105698P8638.vm", "1795769620.M96844P8637.vm", "99.M5P1.vm", "1795769620.M96844P8636.vm", "x", "1795769621.M1P1.vm"}
	sort.Slice(names, func(i, j int) bool { return nameLess(names[i], names[j]) })
	want := []string{"x", "99.M5P1.vm", "1795769620.M96844P8636.vm", "1795769620.M96844P8637.vm", "1795769620.M105698P8638.vm", "1795769621.M1P1.vm"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("%q", names)
	}
}
