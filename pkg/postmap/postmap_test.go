package postmap

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// postmapDir is a config folder with a main.cf.
func postmapDir(t *testing.T, mainCf string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCf), 0644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// postmapRun parses args as the command would and runs it.
func postmapRun(t *testing.T, prog, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var f Flags
	var out, errb bytes.Buffer
	fs := FlagSet(prog, &f)
	if !Parse(prog, fs, &f, args, &errb) {
		return "", errb.String(), 1
	}
	code = Run(prog, f, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestBuildQueryShow(t *testing.T) {
	dir := postmapDir(t, "")
	src := filepath.Join(dir, "virtual")
	os.WriteFile(src, []byte("@Example.net info@example.com\nbad\nx 1\nx 2\n"), 0600)
	_, errs, code := postmapRun(t, "postmap", "", "-c", dir, src)
	want := "postmap: warning: " + src + ", line 2: expected format: key whitespace value\n" +
		"postmap: warning: " + src + ".db: duplicate entry: \"x\"\n"
	if code != 0 || errs != want {
		t.Fatalf("build: %d %q", code, errs)
	}
	st, err := os.Stat(src + ".db")
	if err != nil || st.Mode().Perm() != 0600 {
		t.Errorf("index mode: %v %v", st, err)
	}
	if out, _, code := postmapRun(t, "postmap", "", "-c", dir, "-q", "@EXAMPLE.NET", src); code != 0 || out != "info@example.com\n" {
		t.Errorf("-q: %d %q", code, out)
	}
	if _, _, code := postmapRun(t, "postmap", "", "-c", dir, "-q", "nope", src); code != 1 {
		t.Errorf("-q not found: exit %d", code)
	}
	if out, _, _ := postmapRun(t, "postmap", "", "-c", dir, "-s", "hash:"+src); out != "@example.net\tinfo@example.com\nx\t1\n" {
		t.Errorf("-s: %q", out)
	}
	if out, _, code := postmapRun(t, "postmap", "x\nX\nnone\n", "-c", dir, "-q", "-", src); code != 0 || out != "x\t1\nX\t1\n" {
		t.Errorf("-q -: %d %q", code, out)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-q"}, "postmap: option requires an argument -- 'q'\npostmap: fatal: usage: postmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...\n"},
		{[]string{"-z", "x"}, "postmap: invalid option -- 'z'\npostmap: fatal: usage: postmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...\n"},
		{[]string{"-c", "/nonexistent", "x"}, "postmap: fatal: open /nonexistent/main.cf: No such file or directory\n"},
		{[]string{"-s", "-d", "x", "y"}, "postmap: fatal: specify only one of -s -q or -d\n"},
	} {
		_, errs, code := postmapRun(t, "postmap", "", c.args...)
		if code != 1 || errs != c.want {
			t.Errorf("%q: %d %q, want %q", c.args, code, errs, c.want)
		}
	}
}

func TestOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	conf := postmapDir(t, "")
	dir := t.TempDir()
	os.Chmod(dir, 0777)
	os.Chmod(filepath.Dir(dir), 0755) // let nobody through the test's temp root
	src := filepath.Join(dir, "t")
	os.WriteFile(src, []byte("a 1\n"), 0640)
	os.Chown(src, uid, gid)

	owner := func() (int, int, os.FileMode) {
		st, err := os.Stat(src + ".db")
		if err != nil {
			t.Fatal(err)
		}
		s := st.Sys().(*syscall.Stat_t)
		return int(s.Uid), int(s.Gid), st.Mode().Perm()
	}
	if _, errs, code := postmapRun(t, "postmap", "", "-c", conf, src); code != 0 {
		t.Fatalf("build: %q", errs)
	}
	if u, g, m := owner(); u != uid || g != gid || m != 0640 {
		t.Errorf("default: %d:%d %v, want nobody's and 0640", u, g, m)
	}
	if os.Geteuid() != 0 {
		t.Fatal("root privileges were not restored")
	}
	os.Remove(src + ".db")
	postmapRun(t, "postmap", "", "-c", conf, "-o", "-p", src)
	if u, g, m := owner(); u != 0 || g != 0 || m != 0644 {
		t.Errorf("-o -p: %d:%d %v, want root and 0644", u, g, m)
	}
	// nobody cannot write into a root-only folder: Postfix's error
	locked := t.TempDir()
	lsrc := filepath.Join(locked, "t")
	os.WriteFile(lsrc, []byte("a 1\n"), 0644)
	os.Chown(lsrc, uid, gid)
	_, errs, code := postmapRun(t, "postmap", "", "-c", conf, lsrc)
	if code != 1 || errs != "postmap: fatal: open "+lsrc+".db: Permission denied\n" {
		t.Errorf("locked folder: %d %q", code, errs)
	}
}

func TestBadSources(t *testing.T) {
	conf := postmapDir(t, "")
	dir := t.TempDir()
	_, errs, code := postmapRun(t, "postmap", "", "-c", conf, filepath.Join(dir, "missing"))
	if code != 1 || !strings.Contains(errs, "fatal: open "+filepath.Join(dir, "missing")+": No such file or directory") {
		t.Errorf("missing: %d %q", code, errs)
	}
	os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling"))
	if _, _, code := postmapRun(t, "postmap", "", "-c", conf, filepath.Join(dir, "dangling")); code != 1 {
		t.Errorf("dangling: exit %d", code)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("\x00\x01\x02\xff\xfe\n\x7f key\x00 v\nnovalue\nk\tv\r\n"), 0644)
	_, errs, code = postmapRun(t, "postmap", "", "-c", conf, junk)
	if code != 0 || strings.Count(errs, "expected format") != 2 {
		t.Errorf("junk: %d %q", code, errs)
	}
	if out, _, _ := postmapRun(t, "postmap", "", "-c", conf, "-q", "K", junk); out != "v\n" {
		t.Errorf("CRLF value: %q", out)
	}
	// a corrupted index is an error naming the file, never a crash
	os.WriteFile(junk+".db", []byte("PDIDX\x00\x01\x00truncated"), 0644)
	_, errs, code = postmapRun(t, "postmap", "", "-c", conf, "-q", "k", junk)
	if code != 1 || !strings.Contains(errs, "fatal: open database "+junk+".db: index file is corrupted") {
		t.Errorf("corrupt: %d %q", code, errs)
	}
}

func TestNewaliases(t *testing.T) {
	dir := t.TempDir()
	al := filepath.Join(dir, "aliases")
	conf := postmapDir(t, "alias_database = hash:"+al+"\nalias_maps = hash:"+al+"\nmyhostname = mx.example.com\n")
	os.WriteFile(al, []byte("root: john\nsales: charles,john,\n\tmike\nbad line\n"), 0644)
	var errb bytes.Buffer
	if code := Newaliases(conf, &errb); code != 0 {
		t.Fatalf("newaliases: %d %q", code, errb.String())
	}
	if errb.String() != "postalias: warning: "+al+", line 4: need name:value pair\n" {
		t.Errorf("stderr %q", errb.String())
	}
	out, _, code := postmapRun(t, "postalias", "", "-c", conf, "-q", "SALES", al)
	if code != 0 || out != "charles, john, mike\n" {
		t.Errorf("-q sales: %d %q", code, out)
	}
	out, _, _ = postmapRun(t, "postalias", "", "-c", conf, "-s", al)
	if !strings.Contains(out, "@:\t@\n") || !strings.Contains(out, "YP_MASTER_NAME:\tmx.example.com\n") || !strings.HasPrefix(out, "root:\tjohn\n") {
		t.Errorf("-s: %q", out)
	}
	errb.Reset()
	os.Remove(al)
	if code := Newaliases(conf, &errb); code != 1 || !strings.Contains(errb.String(), "fatal: open "+al+": No such file or directory") {
		t.Errorf("missing aliases: %d %q", code, errb.String())
	}
}
