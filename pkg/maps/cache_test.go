package maps

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// writeHash builds NAME.db in postdove's format from key/value pairs.
func writeHash(t *testing.T, name string, kv ...string) {
	t.Helper()
	var b Builder
	for i := 0; i+1 < len(kv); i += 2 {
		b.Add([]byte(kv[i]), []byte(kv[i+1]))
	}
	if err := b.WriteFile(name+".db", 0644, -1, -1); err != nil {
		t.Fatal(err)
	}
}

func cacheLookup(t *testing.T, c *Cache, spec, key string) string {
	t.Helper()
	v, ok, err := c.Lookup(spec, key)
	if err != nil {
		t.Fatalf("lookup %s in %s: %v", key, spec, err)
	}
	if !ok {
		return "(not found)"
	}
	return v
}

// TestCacheReopensChangedTable: a rebuilt table (new file), a source file
// edited in place and a removed table are all noticed at the next lookup.
func TestCacheReopensChangedTable(t *testing.T) {
	dir := t.TempDir()
	al := filepath.Join(dir, "aliases")
	writeHash(t, al, "team", "alice")
	src := filepath.Join(dir, "virtual")
	os.WriteFile(src, []byte("a@example.com b\n"), 0644)
	c := NewCache(Options{FoldCase: true}, nil)
	defer c.Close()

	if v := cacheLookup(t, c, "hash:"+al, "TEAM"); v != "alice" {
		t.Fatalf("team = %q", v)
	}
	if v := cacheLookup(t, c, "texthash:"+src, "a@example.com"); v != "b" {
		t.Fatalf("a = %q", v)
	}
	writeHash(t, al, "team", "alice, bob")
	if v := cacheLookup(t, c, "hash:"+al, "team"); v != "alice, bob" {
		t.Errorf("after rebuild team = %q", v)
	}
	// The same inode and size, a later mtime.
	os.WriteFile(src, []byte("a@example.com c\n"), 0644)
	os.Chtimes(src, time.Now().Add(time.Second), time.Now().Add(time.Second))
	if v := cacheLookup(t, c, "texthash:"+src, "a@example.com"); v != "c" {
		t.Errorf("after edit a = %q", v)
	}
	os.Remove(al + ".db")
	if _, _, err := c.Lookup("hash:"+al, "team"); err == nil {
		t.Error("a removed table still answers")
	}
	writeHash(t, al, "team", "carol")
	if v := cacheLookup(t, c, "hash:"+al, "team"); v != "carol" {
		t.Errorf("after re-creation team = %q", v)
	}
}

// TestCacheUnavailable: a missing or unreadable table is an error worded
// as Postfix words it, reported once per state of the file, and never
// "not found".
func TestCacheUnavailable(t *testing.T) {
	dir := t.TempDir()
	al := filepath.Join(dir, "aliases")
	var errs []string
	c := NewCache(Options{FoldCase: true}, func(m string) { errs = append(errs, m) })
	defer c.Close()
	spec := "hash:" + al
	for i := 0; i < 2; i++ {
		_, found, err := c.Lookup(spec, "team")
		want := spec + " is unavailable. open database " + al + ".db: No such file or directory"
		var ue *UnavailableError
		if found || err == nil || err.Error() != want || !errors.As(err, &ue) {
			t.Fatalf("lookup %d: %v %v, want %q", i, found, err, want)
		}
		if adv := RebuildAdvice(spec, "postalias", err); adv != "" {
			t.Errorf("advice for a missing file: %q", adv)
		}
	}
	if len(errs) != 1 || errs[0] != "open database "+al+".db: No such file or directory" {
		t.Errorf("errors logged: %q", errs)
	}
	os.WriteFile(al+".db", []byte("this is not a database file, and it is long enough to look like one"), 0644)
	_, found, err := c.Lookup(spec, "team")
	if found || err == nil || err.Error() != spec+" is unavailable. open database "+al+".db: Invalid argument" {
		t.Fatalf("garbage: %v %v", found, err)
	}
	want := al + ".db cannot be read; run \"postalias " + al + "\" to rebuild it"
	if adv := RebuildAdvice(spec, "postalias", err); adv != want {
		t.Errorf("advice %q, want %q", adv, want)
	}
	if adv := RebuildAdvice("proxy:btree:"+al, "postmap", err); adv != al+".db cannot be read; run \"postmap btree:"+al+"\" to rebuild it" {
		t.Errorf("btree advice %q", adv)
	}
	if len(errs) != 2 {
		t.Errorf("errors logged: %q", errs)
	}
	writeHash(t, al, "team", "alice")
	if v := cacheLookup(t, c, spec, "team"); v != "alice" {
		t.Errorf("once fixed team = %q", v)
	}
}

// TestCacheConcurrent: lookups from many goroutines while the table is
// rebuilt never fail and never see anything but a whole table (run with
// -race).
func TestCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	al := filepath.Join(dir, "aliases")
	writeHash(t, al, "team", "v0")
	c := NewCache(Options{}, nil)
	defer c.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, ok, err := c.Lookup("hash:"+al, "team")
				if err != nil || !ok || len(v) < 2 || v[0] != 'v' {
					t.Errorf("lookup: %q %v %v", v, ok, err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 50; i++ {
		writeHash(t, al, "team", fmt.Sprintf("v%d", i))
	}
	close(stop)
	wg.Wait()
	if v := cacheLookup(t, c, "hash:"+al, "team"); v != "v50" {
		t.Errorf("team = %q", v)
	}
}

func TestTableFile(t *testing.T) {
	for spec, want := range map[string]string{
		"hash:/etc/aliases":         "/etc/aliases.db",
		"/etc/aliases":              "/etc/aliases.db",
		"proxy:btree:/etc/x":        "/etc/x.db",
		"lmdb:/etc/x":               "/etc/x.lmdb",
		"cidr:/etc/postfix/clients": "/etc/postfix/clients",
		"texthash:/etc/x":           "/etc/x",
		"inline:{a=b}":              "",
		"static:OK":                 "",
	} {
		if got := TableFile(spec); got != want {
			t.Errorf("TableFile(%q) = %q, want %q", spec, got, want)
		}
	}
}

// BenchmarkCacheLookup is one lookup through the cache (a stat of the
// index file and the lookup), as the daemons do per key.
func BenchmarkCacheLookup(b *testing.B) {
	dir := b.TempDir()
	al := filepath.Join(dir, "aliases")
	var bl Builder
	bl.Add([]byte("team"), []byte("alice"))
	if err := bl.WriteFile(al+".db", 0644, -1, -1); err != nil {
		b.Fatal(err)
	}
	c := NewCache(Options{FoldCase: true}, nil)
	defer c.Close()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok, err := c.Lookup("hash:"+al, "team"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
