package maps

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// indexedBuild writes an index at path from key/value pairs.
func indexedBuild(t *testing.T, path string, kv ...string) {
	t.Helper()
	b := &Builder{}
	for i := 0; i+1 < len(kv); i += 2 {
		if err := b.Add([]byte(kv[i]), []byte(kv[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.WriteFile(path, 0640, -1, -1); err != nil {
		t.Fatal(err)
	}
}

func indexedLookup(t *testing.T, tab Table, key string) (string, bool) {
	t.Helper()
	v, ok, err := tab.Lookup(key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return v, ok
}

func TestIndexedTypesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for typ, suf := range map[string]string{"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"} {
		src := filepath.Join(dir, typ)
		indexedBuild(t, src+suf, "b", "2", "a", "1", "empty", "")
		tab, err := Open(typ+":"+src, Options{FoldCase: true})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if v, ok := indexedLookup(t, tab, "A"); !ok || v != "1" {
			t.Errorf("%s: A = %q %v, want 1 (folded)", typ, v, ok)
		}
		if v, ok := indexedLookup(t, tab, "empty"); !ok || v != "" {
			t.Errorf("%s: empty = %q %v", typ, v, ok)
		}
		if _, ok := indexedLookup(t, tab, "c"); ok {
			t.Errorf("%s: c found", typ)
		}
		tab.Close()
		st, _ := os.Stat(src + suf)
		if st.Mode().Perm() != 0640 {
			t.Errorf("%s: mode %v", typ, st.Mode())
		}
	}
}

func TestIndexNoFoldAndNul(t *testing.T) {
	dir := t.TempDir()
	indexedBuild(t, filepath.Join(dir, "t.db"), "Key", "v", "n\x00", "w\x00")
	tab, err := Open("hash:"+filepath.Join(dir, "t"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if _, ok := indexedLookup(t, tab, "key"); ok {
		t.Error("key found without folding at build")
	}
	if v, ok := indexedLookup(t, tab, "Key"); !ok || v != "v" {
		t.Errorf("Key = %q %v", v, ok)
	}
	if v, ok := indexedLookup(t, tab, "n"); !ok || v != "w" {
		t.Errorf("NUL-terminated n = %q %v", v, ok)
	}
}

func TestBuilderDuplicates(t *testing.T) {
	for _, pol := range []DupPolicy{DupKeepFirst, DupReplace} {
		var dups []string
		b := &Builder{Dups: pol, Dup: func(k []byte) { dups = append(dups, string(k)) }}
		for i := 0; i < 5000; i++ { // enough to grow the table several times
			b.Add([]byte(fmt.Sprint("k", i%2000)), []byte(fmt.Sprint(i)))
		}
		if len(dups) != 3000 || b.Len() != 2000 {
			t.Fatalf("policy %d: %d duplicates, %d entries", pol, len(dups), b.Len())
		}
		path := filepath.Join(t.TempDir(), "t.db")
		if err := b.WriteFile(path, 0644, -1, -1); err != nil {
			t.Fatal(err)
		}
		ix, err := OpenIndex(path)
		if err != nil {
			t.Fatal(err)
		}
		v, ok, _ := ix.Get([]byte("k7"))
		want := map[DupPolicy]string{DupKeepFirst: "7", DupReplace: "4007"}[pol]
		if !ok || string(v) != want {
			t.Errorf("policy %d: k7 = %q, want %q", pol, v, want)
		}
		if ix.Len() != 2000 {
			t.Errorf("Len %d", ix.Len())
		}
		ix.Close()
	}
}

func TestBtreeIsSorted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	b := &Builder{Sorted: true}
	for _, k := range []string{"c", "a", "b"} {
		b.Add([]byte(k), []byte("x"))
	}
	if err := b.WriteFile(path, 0644, -1, -1); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var keys []string
	ix.Each(func(k, v []byte) bool { keys = append(keys, string(k)); return true })
	if strings.Join(keys, "") != "abc" {
		t.Errorf("order %q", keys)
	}
}

func TestIndexBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	indexedBuild(t, good, "a", "1", "b", "2")
	data, _ := os.ReadFile(good)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0644)
		return p
	}
	// every truncation must be refused cleanly, never panic
	for n := 0; n < len(data); n++ {
		p := write("trunc.db", data[:n])
		if ix, err := OpenIndex(p); err == nil {
			ix.Close()
			t.Fatalf("truncated to %d bytes: opened", n)
		}
	}
	// flipped bytes: open may succeed, lookups must not panic
	for i := 8; i < len(data); i++ {
		c := append([]byte(nil), data...)
		c[i] ^= 0xff
		p := write("flip.db", c)
		if ix, err := OpenIndex(p); err == nil {
			ix.Get([]byte("a"))
			ix.Get([]byte("b"))
			ix.Each(func(k, v []byte) bool { return true })
			ix.Close()
		}
	}
	// binary junk, an empty file, a folder, a dangling path
	junk := write("junk.db", []byte("\x00\x01binary junk that is long enough to pass the header check....."))
	if _, err := OpenIndex(junk); err != ErrNotIndex {
		t.Errorf("junk: %v", err)
	}
	os.Mkdir(filepath.Join(dir, "folder.db"), 0755)
	_, err := Open("hash:"+filepath.Join(dir, "folder"), Options{})
	if err == nil || !strings.Contains(err.Error(), "Is a directory") {
		t.Errorf("folder: %v", err)
	}
	_, err = Open("hash:"+filepath.Join(dir, "missing"), Options{})
	if err == nil || err.Error() != "open database "+filepath.Join(dir, "missing.db")+": No such file or directory" {
		t.Errorf("missing: %v", err)
	}
	os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling.db"))
	if _, err = Open("hash:"+filepath.Join(dir, "dangling"), Options{}); err == nil {
		t.Error("dangling symlink opened")
	}
}

// TestForeignDatabaseIsAnError: a .db file in neither postdove's nor
// Berkeley DB's format is an error to rebuild from, never the source read
// in some other table's syntax (an aliases file read as postmap input
// keeps the colon in its keys and matches nothing).
func TestForeignDatabaseIsAnError(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "access")
	os.WriteFile(src, []byte("Example.com REJECT\n"), 0644)
	os.WriteFile(src+".db", []byte("\x00\x06\x15\x61 a file that is no database at all, padded out to size"), 0644)
	tab, err := Open("hash:"+src, Options{FoldCase: true})
	if err == nil {
		tab.Close()
		t.Fatal("opened")
	}
	if err.Error() != "open database "+src+".db: Invalid argument" || !NeedsRebuild(err) {
		t.Errorf("error %q, rebuild %v", err, NeedsRebuild(err))
	}
	if _, err := Open("hash:"+filepath.Join(dir, "missing"), Options{}); NeedsRebuild(err) {
		t.Errorf("a missing file needs no rebuild: %v", err)
	}
}

func TestStaleWarning(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "t")
	os.WriteFile(src, []byte("a 1\n"), 0644)
	indexedBuild(t, src+".db", "a", "1")
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(src+".db", old, old)
	os.Chtimes(src, old.Add(time.Hour), old.Add(time.Hour))
	var warns []string
	tab, err := Open("hash:"+src, Options{Warn: func(m string) { warns = append(warns, m) }})
	if err != nil {
		t.Fatal(err)
	}
	tab.Close()
	want := "database " + src + ".db is older than source file " + src
	if len(warns) != 1 || warns[0] != want {
		t.Errorf("warnings %q, want %q", warns, want)
	}
	// a source edited just now may be rebuilding: no warning yet
	os.Chtimes(src, time.Now(), time.Now())
	warns = nil
	tab, _ = Open("hash:"+src, Options{Warn: func(m string) { warns = append(warns, m) }})
	tab.Close()
	if len(warns) != 0 {
		t.Errorf("fresh source warned: %q", warns)
	}
}

func TestSourceReader(t *testing.T) {
	in := "a 1\r\n# c\n\n  cont \t\nb\t2\n  \n\tmore\nc\x00junk 3\n" + "big " + strings.Repeat("y", 1<<20) + "\nlast no newline"
	var warns []string
	sr := NewSourceReader(strings.NewReader("  leading x\n"+in), "f", func(m string) { warns = append(warns, m) })
	type ll struct {
		text string
		no   int
	}
	var got []ll
	for {
		line, no, err := sr.Next()
		if err != nil {
			break
		}
		got = append(got, ll{string(line), no})
	}
	want := []ll{{"a 1\r  cont", 2}, {"b\t2\tmore", 6}, {"c", 9}, {"big " + strings.Repeat("y", 1<<20), 10}, {"last no newline", 11}}
	if len(got) != len(want) {
		t.Fatalf("got %d lines: %q", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %q/%d, want %q/%d", i, trunc(got[i].text), got[i].no, trunc(want[i].text), want[i].no)
		}
	}
	if len(warns) != 1 || warns[0] != `f: logical line must not start with whitespace: "  leading x"` {
		t.Errorf("warnings %q", warns)
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func TestTexthashInlineStaticUnix(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "t")
	os.WriteFile(src, []byte("A 1\nnovalue\na 2\nb two words\r\n"), 0644)
	var warns []string
	tab, err := Open("texthash:"+src, Options{FoldCase: true, Warn: func(m string) { warns = append(warns, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := indexedLookup(t, tab, "a"); v != "1" {
		t.Errorf("a = %q", v)
	}
	if v, _ := indexedLookup(t, tab, "B"); v != "two words" {
		t.Errorf("b = %q", v)
	}
	if len(warns) != 2 {
		t.Errorf("warnings %q", warns)
	}
	if _, err := Open("texthash:"+filepath.Join(dir, "missing"), Options{}); err == nil {
		t.Error("missing texthash opened")
	}
	if _, err := Open("texthash:"+dir, Options{}); err == nil {
		t.Error("folder texthash opened")
	}

	in, err := Open("inline:{a=b, { c = d e, f }, G=h}", Options{FoldCase: true})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"a": "b", "c": "d e, f", "g": "h"} {
		if v, ok := indexedLookup(t, in, k); !ok || v != want {
			t.Errorf("inline %s = %q %v", k, v, ok)
		}
	}
	for _, bad := range []string{"inline:a=b", "inline:{a=b, x}", "inline:{{a=b}", "inline:{=b}"} {
		if _, err := Open(bad, Options{}); err == nil {
			t.Errorf("%s opened", bad)
		}
	}
	st, _ := Open("static:{a b}", Options{})
	if v, ok := indexedLookup(t, st, "anything"); !ok || v != "a b" {
		t.Errorf("static = %q", v)
	}
	pw, _ := Open("proxy:unix:passwd.byname", Options{})
	if v, ok := indexedLookup(t, pw, "root"); !ok || !strings.HasPrefix(v, "root:x:0:0:") {
		t.Errorf("passwd root = %q", v)
	}
	gr, _ := Open("unix:group.byname", Options{})
	if v, ok := indexedLookup(t, gr, "root"); !ok || !strings.HasPrefix(v, "root:x:0:") {
		t.Errorf("group root = %q", v)
	}
	if _, ok := indexedLookup(t, gr, "no-such-group"); ok {
		t.Error("no-such-group found")
	}
	if _, err := Open("unix:shadow.byname", Options{}); err == nil {
		t.Error("unix:shadow.byname opened")
	}
}
