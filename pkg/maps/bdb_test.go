package maps

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// oracleTool runs one of the real Postfix's commands (postmap, postalias)
// with a private main.cf in dir.
func oracleTool(t *testing.T, dir string) func(stdin, name string, args ...string) string {
	t.Helper()
	o := oracle.Get(t)
	cf := filepath.Join(dir, "cf")
	os.MkdirAll(cf, 0755)
	os.WriteFile(filepath.Join(cf, "main.cf"), []byte("compatibility_level = 3.6\n"+o.DynamicMapsConfig()), 0644)
	return func(stdin, name string, args ...string) string {
		t.Helper()
		cmd := o.Command(name, append([]string{"-c", cf}, args...)...)
		cmd.Dir = dir
		res := oracle.Run(cmd, stdin)
		if res.Code != 0 && !(res.Code == 1 && strings.Contains(strings.Join(args, " "), "-q")) {
			t.Fatalf("oracle %s %v: exit %d: %s", name, args, res.Code, res.Stderr)
		}
		return res.Stdout
	}
}

// parseTabbed reads "key<TAB>value" lines (postmap -q - and -s output;
// postalias writes "key:<TAB>value").
func parseTabbed(s string, colon bool) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if k, v, ok := strings.Cut(l, "\t"); ok {
			if colon {
				k = strings.TrimSuffix(k, ":")
			}
			m[k] = v
		}
	}
	return m
}

// compareWithOracle looks every key up in postdove's reader and in the
// oracle's postmap -q -, and lists the table both ways.
func compareWithOracle(t *testing.T, run func(string, string, ...string) string, tool, spec string, keys []string) {
	t.Helper()
	tab, err := Open(spec, Options{FoldCase: true})
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	defer tab.Close()
	want := parseTabbed(run(strings.Join(keys, "\n")+"\n", tool, "-q", "-", spec), tool == "postalias")
	if len(want) == 0 {
		t.Fatalf("oracle found none of %d keys in %s", len(keys), spec)
	}
	for _, k := range keys {
		v, ok, err := tab.Lookup(k)
		if err != nil {
			t.Fatalf("%s: lookup %q: %v", spec, k, err)
		}
		w, wok := want[strings.ToLower(k)]
		if !wok {
			w, wok = want[k]
		}
		if ok != wok || v != w {
			t.Fatalf("%s: lookup %.40q = %.40q %v, oracle %.40q %v", spec, k, v, ok, w, wok)
		}
	}
	seq, ok := tab.(Sequencer)
	if !ok {
		t.Fatalf("%s: cannot be listed", spec)
	}
	got := map[string]string{}
	if err := seq.Each(func(k, v string) bool { got[k] = v; return true }); err != nil {
		t.Fatalf("%s: list: %v", spec, err)
	}
	all := parseTabbed(run("", tool, "-s", spec), tool == "postalias")
	if len(got) != len(all) {
		t.Errorf("%s: listed %d entries, oracle %d", spec, len(got), len(all))
	}
	for k, v := range all {
		if got[k] != v {
			t.Errorf("%s: listed %.40q = %.40q, oracle %.40q", spec, k, got[k], v)
			break
		}
	}
}

// TestBDBMatchesOracle reads hash and btree files that the real postmap
// and postalias built, small and large (12,000 keys, values and keys
// longer than a page, so overflow pages), and compares every lookup and
// the listing with the real postmap -q and -s.
func TestBDBMatchesOracle(t *testing.T) {
	dir := t.TempDir()
	run := oracleTool(t, dir)
	r := rand.New(rand.NewSource(1))
	var src strings.Builder
	var keys []string
	for i := 0; i < 12000; i++ {
		k := fmt.Sprintf("key%d@Example.COM", i)
		v := fmt.Sprintf("value%d", i)
		switch i % 97 {
		case 3:
			v += strings.Repeat("x", 100+r.Intn(20000)) // overflow value
		case 5:
			k = fmt.Sprintf("long%d.", i) + strings.Repeat("k", 5000+r.Intn(3000)) // overflow key
		}
		fmt.Fprintf(&src, "%s %s\n", k, v)
		keys = append(keys, k)
	}
	keys = append(keys, "missing", "key1@example.co", "KEY7@EXAMPLE.COM", "", "long5")
	os.WriteFile(filepath.Join(dir, "big"), []byte(src.String()), 0644)
	aliases := "root: john\nsales: charles,john,\n  mike\nteam: alice\n\"a b\": x\nowner-sales: root\n"
	os.WriteFile(filepath.Join(dir, "aliases"), []byte(aliases), 0644)
	akeys := []string{"root", "sales", "team", "a b", "owner-sales", "@", "nobody", "Team", "team:"}

	for _, typ := range []string{"hash", "btree"} {
		t.Run(typ, func(t *testing.T) {
			big := filepath.Join(dir, typ+"-big")
			os.Link(filepath.Join(dir, "big"), big)
			run("", "postmap", typ+":"+big)
			compareWithOracle(t, run, "postmap", typ+":"+big, keys)

			al := filepath.Join(dir, typ+"-aliases")
			os.Link(filepath.Join(dir, "aliases"), al)
			run("", "postalias", typ+":"+al)
			compareWithOracle(t, run, "postalias", typ+":"+al, akeys)
			if v, ok, err := mustOpen(t, typ+":"+al).Lookup("team"); v != "alice" || !ok || err != nil {
				t.Errorf("team = %q %v %v", v, ok, err)
			}

			// The same entries in big-endian byte order (db_load).
			if _, err := exec.LookPath("db5.3_load"); err != nil {
				t.Log("no db5.3_load: big-endian files not made")
				return
			}
			for _, name := range []string{big, al} {
				be := name + "-be"
				cmd := exec.Command("sh", "-c", "db5.3_dump \"$1\".db | db5.3_load -c db_lorder=4321 \"$2\".db", "sh", name, be)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("db_load: %v %s", err, out)
				}
				if b, _ := os.ReadFile(be + ".db"); len(b) < 16 || b[12] != 0 {
					t.Fatalf("%s.db is not big-endian", be)
				}
				tool, ks := "postmap", keys
				if name == al {
					tool, ks = "postalias", akeys
				}
				compareWithOracle(t, run, tool, typ+":"+be, ks)
			}
		})
	}
}

func mustOpen(t *testing.T, spec string) Table {
	t.Helper()
	tab, err := Open(spec, Options{FoldCase: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tab.Close() })
	return tab
}

// TestBDBTestdata reads the Berkeley DB files kept in testdata (built by
// Postfix 3.7's postalias, and in big-endian order by db_load), so the
// reader is tested where the oracle is missing too.
func TestBDBTestdata(t *testing.T) {
	want := map[string]string{"root": "john", "sales": "charles, john", "team": "alice", "@": "@"}
	for _, f := range []string{"aliases-hash", "aliases-btree", "aliases-hash-be", "aliases-btree-be"} {
		typ := strings.Split(f, "-")[1]
		spec := typ + ":" + filepath.Join("testdata", f)
		tab := mustOpen(t, spec)
		for k, v := range want {
			if got, ok, err := tab.Lookup(strings.ToUpper(k)); got != v || !ok || err != nil {
				t.Errorf("%s: %s = %q %v %v, want %q", spec, k, got, ok, err, v)
			}
		}
		if _, ok, err := tab.Lookup("nobody"); ok || err != nil {
			t.Errorf("%s: nobody found (%v)", spec, err)
		}
		var keys []string
		tab.(Sequencer).Each(func(k, v string) bool { keys = append(keys, k); return true })
		sort.Strings(keys)
		if strings.Join(keys, " ") != "@ YP_LAST_MODIFIED YP_MASTER_NAME root sales team" {
			t.Errorf("%s: keys %q", spec, keys)
		}
		// the other type is refused, as Berkeley DB refuses it
		other := map[string]string{"hash": "btree", "btree": "hash"}[typ]
		_, err := Open(other+":"+filepath.Join("testdata", f), Options{})
		if err == nil || err.Error() != "open database "+filepath.Join("testdata", f)+".db: Invalid argument" || !NeedsRebuild(err) {
			t.Errorf("%s as %s: %v", f, other, err)
		}
	}
}

// TestBDBOtherHashFunction: a hash file whose hash function is not DB's
// default (its check value differs) is read whole, and still answers.
func TestBDBOtherHashFunction(t *testing.T) {
	for _, f := range []string{"aliases-hash", "aliases-hash-be", "small512-hash"} {
		data, err := os.ReadFile(filepath.Join("testdata", f+".db"))
		if err != nil {
			t.Fatal(err)
		}
		data[92] ^= 0xff
		db, err := ParseBDB(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if db.all == nil {
			t.Fatalf("%s: the changed check value went unnoticed", f)
		}
		key, want := "team\x00", "alice\x00"
		if strings.HasPrefix(f, "small") {
			key, want = "k42\x00", "v42\x00"
		}
		if v, ok, err := db.Get([]byte(key)); string(v) != want || !ok || err != nil {
			t.Errorf("%s: %q = %q %v %v", f, key, v, ok, err)
		}
	}
}

// TestBDBSmallPages reads files with 512-byte pages (made from postmap's
// files by db_load): a btree with an internal page, and keys and values
// on overflow pages in both types.
func TestBDBSmallPages(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "small512.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"hash", "btree"} {
		tab := mustOpen(t, typ+":"+filepath.Join("testdata", "small512-"+typ))
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(string(src)), "\n") {
			k, v, _ := strings.Cut(line, " ")
			if got, ok, err := tab.Lookup(k); got != v || !ok || err != nil {
				t.Errorf("%s: %.20q = %.20q %v %v, want %.20q", typ, k, got, ok, err, v)
			}
			n++
		}
		listed := 0
		tab.(Sequencer).Each(func(k, v string) bool { listed++; return true })
		if listed != n {
			t.Errorf("%s: listed %d entries, want %d", typ, listed, n)
		}
		if _, ok, err := tab.Lookup("k1000"); ok || err != nil {
			t.Errorf("%s: k1000 found (%v)", typ, err)
		}
	}
}

// TestBDBDamaged: truncated and flipped files give errors, never a panic.
func TestBDBDamaged(t *testing.T) {
	for _, f := range []string{"aliases-hash", "aliases-btree", "aliases-hash-be", "small512-hash", "small512-btree"} {
		data, err := os.ReadFile(filepath.Join("testdata", f+".db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseBDB(data[:len(data)-100]); err == nil {
			t.Errorf("%s: truncated file parsed", f)
		}
		for i := 0; i < len(data); i += 7 {
			c := append([]byte(nil), data...)
			c[i] ^= 0xa5
			exerciseBDB(c)
		}
	}
}

// exerciseBDB parses data and looks a few keys up and lists it.
func exerciseBDB(data []byte) {
	db, err := ParseBDB(data)
	if err != nil {
		return
	}
	for _, k := range []string{"root\x00", "sales\x00", "team\x00", "@\x00", "x", "k1\x00", "k50\x00", "k99\x00"} {
		db.Get([]byte(k))
	}
	db.Each(func(k, v []byte) bool { return true })
}

func FuzzBDB(f *testing.F) {
	for _, name := range []string{"aliases-hash", "aliases-btree", "aliases-hash-be", "aliases-btree-be", "small512-hash", "small512-btree"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name+".db")); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { exerciseBDB(data) })
}

// TestBDBTruncatedUnderneath: a mapped file that shrinks (Postfix's
// postmap rewrites in place) gives an error, not a crash (SIGBUS).
func TestBDBTruncatedUnderneath(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "aliases-hash.db"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "aliases.db")
	os.WriteFile(p, data, 0644)
	db, err := OpenBDB(p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, ok, err := db.Get([]byte("team\x00")); string(v) != "alice\x00" || !ok || err != nil {
		t.Fatalf("team = %q %v %v", v, ok, err)
	}
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	// The kernel may still serve the old pages; either way, no crash.
	if v, ok, err := db.Get([]byte("team\x00")); err != ErrCorrupt && string(v) != "alice\x00" {
		t.Errorf("lookup in a truncated file: %q %v %v", v, ok, err)
	}
	if err := db.Each(func(k, v []byte) bool { return true }); err != ErrCorrupt && err != nil {
		t.Errorf("listing a truncated file: %v", err)
	}
}

// BenchmarkBDBLookup looks keys up in a 100,000-key table that the real
// postmap built (hash and btree), and in postdove's own index of the same
// entries, through Table.Lookup as the daemons do.
func BenchmarkBDBLookup(b *testing.B) {
	dir := b.TempDir()
	o := oracle.Get(b)
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("compatibility_level = 3.6\n"+o.DynamicMapsConfig()), 0644)
	var src strings.Builder
	var ix Builder
	const n = 100000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&src, "user%d@example.com value%d\n", i, i)
		ix.Add([]byte(fmt.Sprintf("user%d@example.com", i)), []byte(fmt.Sprintf("value%d", i)))
	}
	os.WriteFile(filepath.Join(dir, "t"), []byte(src.String()), 0644)
	if err := ix.WriteFile(filepath.Join(dir, "ours.db"), 0644, -1, -1); err != nil {
		b.Fatal(err)
	}
	for _, typ := range []string{"hash", "btree"} {
		os.Link(filepath.Join(dir, "t"), filepath.Join(dir, typ))
		cmd := o.Command("postmap", "-c", dir, typ+":"+filepath.Join(dir, typ))
		if res := oracle.Run(cmd, ""); res.Code != 0 {
			b.Fatalf("postmap: %s", res.Stderr)
		}
	}
	for _, c := range []struct{ name, spec string }{
		{"postfix-hash", "hash:" + filepath.Join(dir, "hash")},
		{"postfix-btree", "btree:" + filepath.Join(dir, "btree")},
		{"postdove", "hash:" + filepath.Join(dir, "ours")},
	} {
		b.Run(c.name, func(b *testing.B) {
			tab, err := Open(c.spec, Options{FoldCase: true})
			if err != nil {
				b.Fatal(err)
			}
			defer tab.Close()
			keys := make([]string, 1024)
			for i := range keys {
				keys[i] = fmt.Sprintf("User%d@Example.com", (i*7919)%n)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, ok, err := tab.Lookup(keys[i%len(keys)]); !ok || err != nil {
					b.Fatalf("lookup: %v %v", ok, err)
				}
			}
		})
	}
}
