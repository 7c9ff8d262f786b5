package maildir

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testStore(t testing.TB) *Store {
	return OpenStore(filepath.Join(t.TempDir(), "Maildir"), Options{UID: -1, GID: -1, Hostname: "vm"})
}

func inbox(t testing.TB, s *Store) *Mailbox {
	t.Helper()
	mb, err := s.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func TestMUTF7(t *testing.T) {
	for _, tc := range []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"},
		{"a&b", "a&-b"},
		{"Ärger", "&AMQ-rger"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, // RFC 3501 §5.1.3
		{"Entwürfe", "Entw&APw-rfe"},
		{"😀", "&2D3eAA-"},
	} {
		if got := EncodeMUTF7(tc.utf8); got != tc.mutf7 {
			t.Errorf("EncodeMUTF7(%q) = %q, want %q", tc.utf8, got, tc.mutf7)
		}
		if got, err := DecodeMUTF7(tc.mutf7); got != tc.utf8 || err != nil {
			t.Errorf("DecodeMUTF7(%q) = %q, %v", tc.mutf7, got, err)
		}
	}
	for _, bad := range []string{"&", "&AMQ", "&AGE-" /* "a" encoded */, "Ä", "&2D0-" /* lone surrogate */, "&A-"} {
		if got, err := DecodeMUTF7(bad); err == nil {
			t.Errorf("DecodeMUTF7(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseUidlist(t *testing.T) {
	data := "3 V1795757429 N1 Gc8d5b32b7515096bec17000083ecc375\n" +
		"1 :1795757429.M732127P6124.vm,S=18,W=21\n" +
		"4 W1044 S1020 :1795757433.M12P6130.vm\n" +
		"5 :half" // a write in progress
	u, err := ParseUidlist([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []UidRecord{{UID: 1, Name: "1795757429.M732127P6124.vm,S=18,W=21"}, {UID: 4, Ext: []string{"W1044", "S1020"}, Name: "1795757433.M12P6130.vm"}}
	if u.UIDValidity != 1795757429 || u.NextUID != 5 || u.GUID != "c8d5b32b7515096bec17000083ecc375" || !reflect.DeepEqual(u.Records, want) {
		t.Fatalf("%+v", u)
	}
	if u.UID("1795757433.M12P6130.vm") != 4 || u.UID("nope") != 0 {
		t.Fatal("UID lookup")
	}
	// Marshal writes the header with the next UID and keeps the records.
	if got := string(u.Marshal()); got != "3 V1795757429 N5 Gc8d5b32b7515096bec17000083ecc375\n"+
		"1 :1795757429.M732127P6124.vm,S=18,W=21\n4 W1044 S1020 :1795757433.M12P6130.vm\n" {
		t.Fatalf("Marshal:\n%s", got)
	}
	old, err := ParseUidlist([]byte("1 1000 7\n3 1000.P1.host\n5 1001.P2.host:2,S\n"))
	if err != nil || old.Version != 1 || old.NextUID != 7 || len(old.Records) != 2 || old.Records[1].Name != "1001.P2.host:2,S" {
		t.Fatalf("version 1: %+v %v", old, err)
	}
	for _, bad := range []string{"", "3 N5\n", "2 V1\n", "3 V1\n2 :a\n1 :b\n", "3 V1\nx :a\n", "3 V1\n1 a\n", "3 V1\n1 :a/b\n", "3 Vx\n"} {
		if _, err := ParseUidlist([]byte(bad)); err == nil {
			t.Errorf("ParseUidlist(%q): no error", bad)
		}
	}
}

func TestParseKeywords(t *testing.T) {
	k := ParseKeywords([]byte("0 $Junk\n1 foo\n3 bar\n26 toolate\n-1 neg\nx y\n2 $junk\n02 lead\n4 a b\n"))
	if k[0] != "$Junk" || k[1] != "foo" || k[2] != "" || k[3] != "bar" || k[4] != "" {
		t.Fatalf("%q", k[:5])
	}
	if got := string(k.Marshal()); got != "0 $Junk\n1 foo\n3 bar\n" {
		t.Fatalf("Marshal %q", got)
	}
	letters, added, err := k.letters([]string{"FOO", "new"})
	if err != nil || letters != "bc" || !added || k[2] != "new" {
		t.Fatalf("letters %q %v %v", letters, added, err)
	}
	if _, _, err := k.letters([]string{"bad keyword"}); err == nil {
		t.Fatal("a keyword with a space was taken")
	}
}

func TestSubscriptionsFormat(t *testing.T) {
	names := []string{"INBOX", "Ärger.Steuer", "a&b"}
	data := MarshalSubscriptions(names)
	if string(data) != "V\t2\n\nINBOX\n&AMQ-rger\tSteuer\na&-b\n" {
		t.Fatalf("%q", data)
	}
	if got := ParseSubscriptions(data); !reflect.DeepEqual(got, names) {
		t.Fatalf("%q", got)
	}
	// Dovecot 1.x/2.0 files: no header, '.' between levels.
	if got := ParseSubscriptions([]byte("INBOX\nWork.2026\n&AMQ-rger\n")); !reflect.DeepEqual(got, []string{"INBOX", "Work.2026", "Ärger"}) {
		t.Fatalf("%q", got)
	}
}

func TestStoreUIDs(t *testing.T) {
	s := testStore(t)
	mb := inbox(t, s)
	for i := 1; i <= 3; i++ {
		uid, path, err := mb.Deliver(strings.NewReader(msgN(i)), DeliverOptions{})
		if err != nil || uid != uint32(i) || filepath.Base(filepath.Dir(path)) != "new" {
			t.Fatalf("deliver %d: %d %s %v", i, uid, path, err)
		}
	}
	// A file some other deliverer (Postfix's local) put there gets the next UID.
	if _, err := Deliver(mb.Dir, strings.NewReader(msgN(4)), Options{UID: -1, GID: -1, Hostname: "vm"}); err != nil {
		t.Fatal(err)
	}
	st, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Messages) != 4 || st.Messages[3].UID != 4 || st.UIDNext != 5 {
		t.Fatalf("%+v", st)
	}
	m := st.Messages[0]
	if m.Size != int64(len(msgN(1))) || m.VSize != m.Size+4 || time.Since(m.Date) > time.Minute {
		t.Fatalf("sizes/date %+v", m)
	}
	f, msg, err := mb.Open(2)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := readAll(f)
	if string(b) != msgN(2) || msg.UID != 2 {
		t.Fatalf("Open(2): %q", b)
	}
	if err := mb.SetFlags(FlagChange{UID: 2, Flags: "TS", Keywords: []string{"later"}}, FlagChange{UID: 3, Flags: "S"}); err != nil {
		t.Fatal(err)
	}
	if err := mb.Expunge(1, 3); err != nil {
		t.Fatal(err)
	}
	st, err = mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Messages) != 2 || st.Messages[0].UID != 2 || st.Messages[0].Flags() != "ST" || !reflect.DeepEqual(st.Messages[0].Keywords(&st.Keywords), []string{"later"}) || st.Messages[0].Sub != "cur" {
		t.Fatalf("after flags and expunge: %+v", st.Messages)
	}
	u, _, _ := readUidlist(mb.Dir)
	if len(u.Records) != 2 || u.NextUID != 5 {
		t.Fatalf("uidlist after expunge: %s", u.Marshal())
	}
	// A message another process renamed since our Sync is still found.
	st, _ = mb.Sync()
	m2 := st.Find(2)
	os.Rename(filepath.Join(mb.Dir, m2.Path()), filepath.Join(mb.Dir, "cur", m2.Base+":2,R"))
	f, err = mb.OpenMessage(m2)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := readAll(f); string(b) != msgN(2) {
		t.Fatalf("OpenMessage after a rename: %q", b)
	}
	if err := mb.SetFlags(FlagChange{UID: 2, Flags: "D"}); err != nil {
		t.Fatal(err)
	}
	if st, _ = mb.Sync(); st.Find(2).Info != "D" {
		t.Fatalf("flags after a rename: %q", st.Find(2).Info)
	}
	// New mail after an expunge never reuses a UID.
	if uid, _, _ := mb.Deliver(strings.NewReader("x\n"), DeliverOptions{}); uid != 5 {
		t.Fatalf("uid %d after expunge", uid)
	}
}

func readAll(f *os.File) ([]byte, error) {
	defer f.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(f)
	return b.Bytes(), err
}

func TestCopyMoveFolders(t *testing.T) {
	s := testStore(t)
	mb := inbox(t, s)
	mb.Deliver(strings.NewReader(msgN(1)), DeliverOptions{Flags: "F", Keywords: []string{"a", "b"}})
	mb.Deliver(strings.NewReader(msgN(2)), DeliverOptions{})
	if err := s.Create("Archive.2026"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create("Archive.2026"); err == nil {
		t.Fatal("created twice")
	}
	if _, err := os.Stat(filepath.Join(s.Root, ".Archive.2026", "maildirfolder")); err != nil {
		t.Fatal(err)
	}
	dst, err := s.Mailbox("Archive.2026")
	if err != nil {
		t.Fatal(err)
	}
	// The destination keeps its own keyword letters.
	dst.Deliver(strings.NewReader("x\n"), DeliverOptions{Keywords: []string{"b"}})
	uids, err := mb.Move(dst, 1)
	if err != nil || !reflect.DeepEqual(uids, []uint32{2}) {
		t.Fatalf("move: %v %v", uids, err)
	}
	st, _ := dst.Sync()
	m := st.Find(2)
	if m == nil || m.Flags() != "F" || !reflect.DeepEqual(m.Keywords(&st.Keywords), []string{"b", "a"}) && !reflect.DeepEqual(m.Keywords(&st.Keywords), []string{"a", "b"}) {
		t.Fatalf("moved message %+v kw %q", m, st.Keywords[:3])
	}
	if m.Info != "Fab" {
		t.Fatalf("info %q: want the destination's letters", m.Info)
	}
	if src, _ := mb.Sync(); len(src.Messages) != 1 {
		t.Fatal("move left the source")
	}
	if err := s.Rename("Archive", "Old"); err == nil {
		t.Fatal("renamed a mailbox that is not there")
	}
	s.Create("Archive")
	if err := s.Rename("Archive", "Old"); err != nil {
		t.Fatal(err)
	}
	list, _ := s.List()
	if strings.Join(list, ",") != "INBOX,Old,Old.2026" {
		t.Fatalf("after rename: %v", list)
	}
	if err := s.Delete("Old"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("INBOX"); err == nil {
		t.Fatal("deleted INBOX")
	}
	list, _ = s.List()
	if strings.Join(list, ",") != "INBOX,Old.2026" {
		t.Fatalf("after delete: %v", list)
	}
	for _, bad := range []string{"", "a..b", ".a", "a.", "a/b", "a\x01"} {
		if err := s.Create(bad); err == nil {
			t.Errorf("created %q", bad)
		}
	}
	if err := s.Subscribe("Old.2026", true); err != nil {
		t.Fatal(err)
	}
	s.Subscribe("INBOX", true)
	s.Subscribe("Old.2026", true)
	s.Subscribe("INBOX", false)
	if subs, _ := s.Subscriptions(); !reflect.DeepEqual(subs, []string{"Old.2026"}) {
		t.Fatalf("subscriptions %q", subs)
	}
}

// TestIndexNeverOverUidlist: the index serves an unchanged folder, and is
// not believed once the uidlist or the folders change.
func TestIndexNeverOverUidlist(t *testing.T) {
	s := testStore(t)
	mb := inbox(t, s)
	for i := 0; i < 5; i++ {
		mb.Deliver(strings.NewReader(msgN(i)), DeliverOptions{})
	}
	age(t, mb.Dir)
	if _, err := mb.Sync(); err != nil {
		t.Fatal(err)
	}
	x, err := readIndexFile(mb.Dir)
	if err != nil || !x.fresh(mb.Dir) || len(x.msgs) != 5 {
		t.Fatalf("index after sync: %v", err)
	}
	// A message file renamed behind our back (no index change) is
	// noticed through cur/'s and new/'s times.
	st, _ := mb.Sync()
	old := filepath.Join(mb.Dir, st.Messages[0].Path())
	if err := os.Rename(old, filepath.Join(mb.Dir, "cur", st.Messages[0].Base+":2,S")); err != nil {
		t.Fatal(err)
	}
	if st, _ = mb.Sync(); st.Messages[0].Flags() != "S" {
		t.Fatalf("flags %q: stale index believed", st.Messages[0].Flags())
	}
	// Another program rewrites the uidlist with a new UIDVALIDITY (as
	// after a rebuild): the uidlist wins.
	age(t, mb.Dir)
	mb.Sync()
	u, _, _ := readUidlist(mb.Dir)
	u.UIDValidity++
	for i := range u.Records {
		u.Records[i].UID += 100
	}
	u.NextUID += 100
	if err := os.WriteFile(filepath.Join(mb.Dir, UidlistName), u.Marshal(), 0600); err != nil {
		t.Fatal(err)
	}
	st, err = mb.Sync()
	if err != nil || st.UIDValidity != u.UIDValidity || st.Messages[0].UID != 101 {
		t.Fatalf("after the uidlist changed: %+v %v", st, err)
	}
	// A damaged index is rebuilt.
	os.WriteFile(filepath.Join(mb.Dir, IndexName), []byte("PDIDX2\ngarbage"), 0600)
	if st, err = mb.Sync(); err != nil || len(st.Messages) != 5 {
		t.Fatalf("damaged index: %v", err)
	}
}

// age sets the times of a folder's files a minute back, as if it had been
// left alone since.
func age(t testing.TB, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	for _, p := range []string{UidlistName, "new", "cur"} {
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIndexRoundTrip(t *testing.T) {
	x := &index{uidValidity: 7, uidNext: 9, guid: "g", uv: uidlistVersion{[3]int64{1, 2, 3}, 77}, mtimes: [2]int64{4, 5}, msgs: []Message{
		{UID: 3, File: "1.M1P1.vm,S=5,W=6:2,Sa", Base: "1.M1P1.vm,S=5,W=6", Sub: "cur", Info: "Sa", Size: 5, VSize: 6, Date: time.Unix(0, 12345)},
		{UID: 8, File: "2.M1P1.vm", Base: "2.M1P1.vm", Sub: "new", Size: 1, VSize: 2, Date: time.Unix(99, 0), env: encodeEnvelope(&Envelope{Date: "d", MessageID: "<m>"})},
	}}
	got, err := parseIndex(marshalIndex(x))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.msgs {
		if !got.msgs[i].Date.Equal(x.msgs[i].Date) {
			t.Fatal("date")
		}
		got.msgs[i].Date = x.msgs[i].Date
	}
	if !reflect.DeepEqual(got, x) {
		t.Fatalf("%+v\n%+v", got, x)
	}
	b := marshalIndex(x)
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, err := parseIndex(c); err == nil {
			t.Fatalf("a flipped byte %d passed", i)
		}
	}
}

// TestDotlock: a live lock is waited for; a lock of a dead process of this
// host, or one nobody touched for two minutes, is taken over.
func TestDotlock(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, UidlistName+".lock")
	l, err := lockUidlist(dir, Options{UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(lock); string(b) != strconv.Itoa(os.Getpid())+":"+hostname {
		t.Fatalf("lock holds %q", b)
	}
	got := make(chan error)
	go func() {
		l2, err := lockUidlist(dir, Options{UID: -1, GID: -1})
		if err == nil {
			l2.unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second lock taken while held: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	l.unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// A dead holder on this host, lock older than 2 s.
	os.WriteFile(lock, []byte(fmt.Sprintf("%d:%s", deadProcess(t), hostname)), 0600)
	old := time.Now().Add(-5 * time.Second)
	os.Chtimes(lock, old, old)
	l, err = lockUidlist(dir, Options{UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	l.unlock()
	// Another host's lock, untouched for over two minutes.
	os.WriteFile(lock, []byte("1:elsewhere"), 0600)
	old = time.Now().Add(-3 * time.Minute)
	os.Chtimes(lock, old, old)
	l, err = lockUidlist(dir, Options{UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	l.unlock()
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Fatal("unlock left the lock")
	}
}

func deadProcess(t *testing.T) int {
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	p.Wait()
	return p.Pid
}

// TestUIDValidityNeverRepeats: a folder deleted and made again in the same
// second gets a new UIDVALIDITY, as RFC 3501 §2.3.1.1 requires.
func TestUIDValidityNeverRepeats(t *testing.T) {
	at := time.Unix(1795757429, 0)
	s := OpenStore(filepath.Join(t.TempDir(), "Maildir"), Options{UID: -1, GID: -1, Hostname: "vm", Now: func() time.Time { return at }})
	seen := map[uint32]bool{}
	for i := 0; i < 3; i++ {
		if err := s.Create("Box"); err != nil {
			t.Fatal(err)
		}
		mb, _ := s.Mailbox("Box")
		st, err := mb.Sync()
		if err != nil {
			t.Fatal(err)
		}
		if seen[st.UIDValidity] || st.UIDValidity < uint32(at.Unix()) {
			t.Fatalf("UIDVALIDITY %d again", st.UIDValidity)
		}
		seen[st.UIDValidity] = true
		s.Delete("Box")
	}
	if b, _ := os.ReadFile(filepath.Join(s.Root, UIDValidityName)); string(b) != fmt.Sprintf("%08x", at.Unix()+2) {
		t.Fatalf("%s holds %q", UIDValidityName, b)
	}
	if _, err := os.Stat(filepath.Join(s.Root, fmt.Sprintf("%s.%08x", UIDValidityName, at.Unix()+2))); err != nil {
		t.Fatal(err)
	}
}

// TestIncrementalSyncMatchesFull: after any mix of deliveries (with and
// without UIDs), flag changes, expunges and changes made behind the
// store's back, a Sync from the index gives what a Sync from nothing
// gives. Folder times are set to distinct past values after each step,
// so the index is trusted as far as it may be.
func TestIncrementalSyncMatchesFull(t *testing.T) {
	s := testStore(t)
	mb := inbox(t, s)
	rng := rand.New(rand.NewPCG(1, 2))
	fake := time.Now().Add(-time.Hour)
	last := map[string]int64{}
	settle := func() {
		for _, sub := range []string{"new", "cur"} {
			p := filepath.Join(mb.Dir, sub)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.ModTime().UnixNano() != last[sub] {
				fake = fake.Add(time.Second)
				os.Chtimes(p, fake, fake)
				last[sub] = fake.UnixNano()
			}
		}
	}
	pick := func() *Message {
		st, err := mb.Sync()
		if err != nil || len(st.Messages) == 0 {
			return nil
		}
		return &st.Messages[rng.IntN(len(st.Messages))]
	}
	for step := 0; step < 300; step++ {
		op := rng.IntN(8)
		switch op {
		case 0, 1:
			if _, _, err := mb.Deliver(strings.NewReader(msgN(step)), DeliverOptions{}); err != nil {
				t.Fatal(err)
			}
		case 2:
			Deliver(mb.Dir, strings.NewReader(msgN(step)), Options{UID: -1, GID: -1, Hostname: "vm"})
		case 3:
			if m := pick(); m != nil {
				if err := mb.SetFlags(FlagChange{UID: m.UID, Flags: "SF"[:1+rng.IntN(2)], Keywords: []string{"k" + strconv.Itoa(rng.IntN(3))}}); err != nil {
					t.Fatal(err)
				}
			}
		case 4:
			if m := pick(); m != nil {
				if err := mb.Expunge(m.UID); err != nil {
					t.Fatal(err)
				}
			}
		case 5: // another program changes flags
			if m := pick(); m != nil {
				os.Rename(filepath.Join(mb.Dir, m.Path()), filepath.Join(mb.Dir, "cur", m.Base+":2,T"))
			}
		case 6: // another program expunges without touching the uidlist
			if m := pick(); m != nil {
				os.Remove(filepath.Join(mb.Dir, m.Path()))
			}
		case 7: // nothing
		}
		settle()
		inc, err := mb.Sync()
		if err != nil {
			t.Fatal(err)
		}
		settle()
		os.Remove(filepath.Join(mb.Dir, IndexName))
		full, err := mb.Sync()
		if err != nil {
			t.Fatal(err)
		}
		settle()
		if a, b := render(inc), render(full); a != b {
			t.Fatalf("step %d (op %d): from the index\n%s\nfrom nothing\n%s", step, op, a, b)
		}
	}
}

func render(st *Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "V%d N%d\n", st.UIDValidity, st.UIDNext)
	for _, m := range st.Messages {
		fmt.Fprintf(&b, "%d %s/%s %s %d %d %d\n", m.UID, m.Sub, m.File, m.Info, m.Size, m.VSize, m.Date.UnixNano())
	}
	return b.String()
}

func TestUidlistNext(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		data string
		next uint32
		ok   bool
	}{
		{"3 V1 N1 Gab\n", 1, true},
		{"3 V1 N1 Gab\n1 :a\n7 W9 :b\n", 8, true},
		{"3 V1 N20 Gab\n1 :a\n7 :b\n", 20, true},
		{"3 V1 N1\n1 :a\n7 :" + long + "\n", 0, false}, // last line longer than what is read
		{"3 V1 N1\n1 :a\n" + strings.Repeat("2", 5000) + " :b\n", 0, false},
		{"3 V1 N1\n1 :a\n7 :b", 0, false}, // an append here would join the half line
		{"3 V1 N1\n1 :a\nxx\n", 0, false},
		{"1 1 5\n3 a\n", 0, false},
		{"", 0, false},
	} {
		os.WriteFile(filepath.Join(dir, UidlistName), []byte(tc.data), 0600)
		if next, ok := uidlistNext(dir); next != tc.next || ok != tc.ok {
			t.Errorf("%.40q: %d %v, want %d %v", tc.data, next, ok, tc.next, tc.ok)
		}
	}
	// Delivery into a folder with a version 1 list writes it anew as 3.
	mb := inbox(t, testStore(t))
	os.WriteFile(filepath.Join(mb.Dir, UidlistName), []byte("1 1000 5\n"), 0600)
	if uid, _, err := mb.Deliver(strings.NewReader("x\n"), DeliverOptions{}); err != nil || uid != 5 {
		t.Fatalf("uid %d %v", uid, err)
	}
	if u, _, _ := readUidlist(mb.Dir); u.Version != 3 || u.UIDValidity != 1000 || len(u.Records) != 1 {
		t.Fatalf("%s", u.Marshal())
	}
}
