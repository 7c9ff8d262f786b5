package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newTestQueue(t *testing.T) *Queue {
	t.Helper()
	dir := t.TempDir()
	for _, d := range append(append([]string{}, MessageQueues...), Corrupt, Bounce, Defer, Trace, Public) {
		if err := os.Mkdir(filepath.Join(dir, d), 0700); err != nil {
			t.Fatal(err)
		}
	}
	return New(dir)
}

func enqueue(t *testing.T, q *Queue, name string, m *Message, content string) string {
	t.Helper()
	id, err := q.Enqueue(name, m, strings.NewReader(content))
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id
}

func TestRoundTrip(t *testing.T) {
	q := newTestQueue(t)
	arrival := time.Unix(1795299959, 515175000)
	m := &Message{
		Arrival: arrival,
		Sender:  "",
		Recipients: []Recipient{
			{Address: "bob@example.org", Orig: "bobby@example.org"},
			{Address: "\"odd guy\"@example.net\r\n\x00\xff"},
		},
		Attrs: map[string]string{AttrMessageID: "<1@x>", AttrLogIdent: "postfix/smtpd"},
	}
	content := "Subject: hi\r\n\r\nbody\n\x00binary\xff"
	id := enqueue(t, q, Incoming, m, content)
	if !IsShortID(id) {
		t.Fatalf("id %q is not a short queue ID", id)
	}
	f, err := q.Open(Incoming, id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Arrival.Equal(arrival) || f.Sender != "" || f.ID != id || f.Queue != Incoming {
		t.Errorf("envelope = %+v", f.Message)
	}
	if len(f.Recipients) != 2 || f.Recipients[0].Orig != "bobby@example.org" || f.Recipients[1].Address != m.Recipients[1].Address || f.Recipients[1].Status != Pending {
		t.Errorf("recipients = %+v", f.Recipients)
	}
	if f.Attrs[AttrMessageID] != "<1@x>" || f.Attrs[AttrLogIdent] != "postfix/smtpd" {
		t.Errorf("attrs = %v", f.Attrs)
	}
	got, _ := io.ReadAll(f.Content())
	if string(got) != content || f.Size != int64(len(content)) {
		t.Errorf("content = %q (size %d)", got, f.Size)
	}
	ids, err := q.List(Incoming)
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Errorf("List = %v, %v", ids, err)
	}
}

func TestNoRecipientsRefused(t *testing.T) {
	q := newTestQueue(t)
	if _, err := q.Enqueue(Incoming, &Message{Sender: "a@b"}, strings.NewReader("x")); err == nil {
		t.Fatal("queued a message without recipients")
	}
	if ents, _ := os.ReadDir(filepath.Join(q.Dir, Incoming)); len(ents) != 0 {
		t.Errorf("left files behind: %v", ents)
	}
}

func TestSetStatusInPlace(t *testing.T) {
	q := newTestQueue(t)
	id := enqueue(t, q, Active, &Message{Sender: "a@b", Recipients: []Recipient{{Address: "x@y"}, {Address: "z@y"}}}, "hello\n")
	f, err := q.Open(Active, id)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(f.Path)
	if err := f.SetStatus(1, Delivered); err != nil {
		t.Fatal(err)
	}
	if err := f.SetStatus(5, Delivered); err == nil {
		t.Error("SetStatus accepted recipient #5")
	}
	if err := f.SetStatus(0, Status('?')); err == nil {
		t.Error("SetStatus accepted status '?'")
	}
	f.Close()
	m, err := q.ReadEnvelope(Active, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Recipients[0].Status != Pending || m.Recipients[1].Status != Delivered || !m.Recipients[1].Status.Done() {
		t.Errorf("statuses = %c %c", m.Recipients[0].Status, m.Recipients[1].Status)
	}
	after, _ := os.Stat(f.Path)
	if before.Size() != after.Size() {
		t.Errorf("size changed %d -> %d", before.Size(), after.Size())
	}
}

func TestCrashLeftovers(t *testing.T) {
	q := newTestQueue(t)
	w, err := q.Create(Incoming, &Message{Sender: "a@b", Recipients: []Recipient{{Address: "x@y"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half a message")) // and then the power goes out: no Commit
	ids, err := q.List(Incoming)
	if err != nil || len(ids) != 0 {
		t.Fatalf("a temp file was listed as a message: %v %v", ids, err)
	}
	w.Abort()
	if ents, _ := os.ReadDir(filepath.Join(q.Dir, Incoming)); len(ents) != 0 {
		t.Errorf("Abort left %v", ents)
	}
}

// rawFile is a queue file with the given envelope lines ("content" is
// filled in) and content body.
func rawFile(body string, lines ...string) []byte {
	env := magic + "\n"
	for _, l := range lines {
		if l == "content" {
			l = "content " + strings.Repeat("0", 3*numWidth+2)
		}
		env += l + "\n"
	}
	env += "end\n"
	nums := fmt.Sprintf("%0*d %0*d %0*d", numWidth, len(env), numWidth, len(body), numWidth, len(body))
	return []byte(strings.Replace(env, "content "+strings.Repeat("0", 3*numWidth+2), "content "+nums, 1) + body)
}

func TestCorruptFiles(t *testing.T) {
	q := newTestQueue(t)
	id := enqueue(t, q, Deferred, &Message{Sender: "a@b", Recipients: []Recipient{{Address: "x@y"}}}, "Subject: x\n\nbody\n")
	good, err := os.ReadFile(q.Path(Deferred, id))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated content":  good[:len(good)-3],
		"truncated envelope": good[:40],
		"empty":              nil,
		"binary junk":        {0x00, 0xff, 0x13, 0x37, '\n', 0x80},
		"crlf":               bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")),
		"tab":                bytes.Replace(good, []byte("sender "), []byte("sender\t"), 1),
		"bad status":         bytes.Replace(good, []byte("rcpt -"), []byte("rcpt ?"), 1),
		"1MB line":           append([]byte(magic+"\nsender \""+strings.Repeat("a", 1<<20)+"\"\n"), good...),
		"no end":             bytes.Replace(good, []byte("end\n"), []byte("xnd\n"), 1),
		"grown":              append(append([]byte{}, good...), "extra"...),
		// Accepted before, with results made up from nothing: no arrival
		// time made the message expire at once.
		"no arrival":      rawFile("x", "content", `sender "a@b"`, `rcpt - "x@y" ""`),
		"two senders":     rawFile("x", "arrival 1 0", "content", `sender "a@b"`, `sender "c@d"`, `rcpt - "x@y" ""`),
		"no sender":       rawFile("x", "arrival 1 0", "content", `rcpt - "x@y" ""`),
		"spaced arrival":  rawFile("x", "arrival  1 0", "content", `sender "a@b"`, `rcpt - "x@y" ""`),
		"signed content":  bytes.Replace(good, []byte("content 0"), []byte("content +"), 1),
		"unquoted sender": bytes.Replace(good, []byte("sender \"a@b\"\n"), []byte("sender `a@b`\n"), 1),
	}
	// rawFile makes files the reader accepts.
	p := q.Path(Deferred, "ABCDEF123")
	os.MkdirAll(filepath.Dir(p), 0700)
	if err := os.WriteFile(p, rawFile("x", "arrival 1 0", "content", `sender "a@b"`, `rcpt - "x@y" ""`), 0600); err != nil {
		t.Fatal(err)
	}
	if _, err := q.ReadEnvelope(Deferred, "ABCDEF123"); err != nil {
		t.Fatalf("rawFile makes bad files: %v", err)
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p := q.Path(Deferred, "ABCDEF123")
			os.MkdirAll(filepath.Dir(p), 0700)
			if err := os.WriteFile(p, data, 0600); err != nil {
				t.Fatal(err)
			}
			_, err := q.ReadEnvelope(Deferred, "ABCDEF123")
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a CorruptError", err)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := q.ReadEnvelope(Deferred, "ABCDEF999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}

func TestIDsUniqueUnderConcurrency(t *testing.T) {
	for _, long := range []bool{false, true} {
		q := newTestQueue(t)
		q.LongIDs = long
		const n = 200
		var mu sync.Mutex
		seen := map[string]bool{}
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				id, err := q.Enqueue(Incoming, &Message{Sender: "a@b", Recipients: []Recipient{{Address: "r" + strconv.Itoa(i)}}}, strings.NewReader("x"))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				if long != IsLongID(id) {
					t.Errorf("id %s: long=%v", id, IsLongID(id))
				}
				seen[id] = true
			}(i)
		}
		wg.Wait()
		ids, _ := q.List(Incoming)
		if len(ids) != n {
			t.Errorf("long=%v: %d files for %d messages", long, len(ids), n)
		}
	}
}

// The values come from a queue file the real Postfix 3.7 wrote:
// maildrop/6/9/4jX6Hf339jz1SCmy, inode 9979526, mtime 1795299982.43.
func TestIDFormats(t *testing.T) {
	if got := encode(1795299982, base52, 6); got != "4jX6Hf" {
		t.Errorf("seconds = %s", got)
	}
	if got := encode(9979526, base51, 0); got != "1SCmy" {
		t.Errorf("inode = %s", got)
	}
	usec, _ := decode("339j", base52)
	tm := time.Unix(1795299982, int64(usec)*1000)
	if got := LongID(tm, 9979526); got != "4jX6Hf339jz1SCmy" {
		t.Errorf("LongID = %s", got)
	}
	q := New("/q")
	q.HashDepth = 2
	q.SetHashNames("maildrop, deferred")
	if got := q.Path(Maildrop, "4jX6Hf339jz1SCmy"); got != "/q/maildrop/6/9/4jX6Hf339jz1SCmy" {
		t.Errorf("long ID path = %s", got)
	}
	// Postfix's short ID: usec as 5 hex digits, then the inode in hex.
	if got := ShortID(time.Unix(0, 515175000), 0x984571); got != "7DC67984571" {
		t.Errorf("ShortID = %s", got)
	}
	if got := q.Path(Deferred, "7DCF9984571"); got != "/q/deferred/7/D/7DCF9984571" {
		t.Errorf("short ID path = %s", got)
	}
	if got := q.Path(Incoming, "7DCF9984571"); got != "/q/incoming/7DCF9984571" {
		t.Errorf("unhashed path = %s", got)
	}
	for _, bad := range []string{"", "abc", "tmp.1.2", "../../etc", "7dcf99", "4jX6Hf339jz"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestHashedQueuesAndMove(t *testing.T) {
	q := newTestQueue(t)
	q.HashDepth = 2
	id := enqueue(t, q, Deferred, &Message{Sender: "a@b", Recipients: []Recipient{{Address: "x@y"}}}, "x")
	want := filepath.Join(q.Dir, Deferred, id[:1], id[1:2], id)
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("not at hashed path: %v", err)
	}
	if err := q.AppendLog(Defer, id, LogEntry{Recipient: "x@y", Status: "4.4.1", Action: "delayed", Reason: "connect to\nhost: timed out"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Move(id, Deferred, Hold); err != nil {
		t.Fatal(err)
	}
	if name, err := q.Find(id); err != nil || name != Hold {
		t.Fatalf("Find = %s, %v", name, err)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Errorf("still in deferred: %v", err)
	}
	// Hash settings changed since the file was written: still found.
	q.HashDepth = 1
	if err := q.Move(id, Hold, Deferred); err != nil {
		t.Fatal(err)
	}
	q.HashDepth = 2
	if _, err := q.ReadEnvelope(Deferred, id); err != nil {
		t.Errorf("after depth change: %v", err)
	}
	log, err := q.ReadLog(Defer, id)
	if err != nil || len(log) != 1 || log[0].Reason != "connect to host: timed out" || log[0].Recipient != "x@y" {
		t.Errorf("ReadLog = %+v, %v", log, err)
	}
	if err := q.Remove(Deferred, id); err != nil {
		t.Fatal(err)
	}
	if log, _ := q.ReadLog(Defer, id); len(log) != 0 {
		t.Errorf("defer log survived Remove: %v", log)
	}
	if _, err := q.Find(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find after Remove: %v", err)
	}
}

func TestSetup(t *testing.T) {
	pf, err := user.Lookup("postfix")
	if err != nil {
		t.Skip("no postfix user")
	}
	pd, err := user.LookupGroup("postdrop")
	if err != nil {
		t.Skip("no postdrop group")
	}
	dir := filepath.Join(t.TempDir(), "spool")
	// A pre-existing directory with the wrong mode gets fixed.
	os.MkdirAll(filepath.Join(dir, "maildrop"), 0777)
	for i := 0; i < 2; i++ {
		if err := Setup(dir, "postfix", "postdrop"); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(pf.Uid)
	gid, _ := strconv.Atoi(pd.Gid)
	want := map[string]struct {
		uid, gid int
		mode     os.FileMode
	}{
		".": {0, 0, 0755}, "maildrop": {uid, gid, 0730}, "public": {uid, gid, 0710},
		"pid": {0, 0, 0755}, "deferred": {uid, 0, 0700}, "private": {uid, 0, 0700},
		"incoming": {uid, 0, 0700}, "corrupt": {uid, 0, 0700}, "saved": {uid, 0, 0700},
	}
	for name, w := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != w.uid || int(st.Gid) != w.gid || fi.Mode().Perm() != w.mode {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", name, st.Uid, st.Gid, fi.Mode().Perm(), w.uid, w.gid, w.mode)
		}
	}
	if err := Setup(dir, "no-such-user-x", "postdrop"); err == nil || !strings.Contains(err.Error(), "no-such-user-x") {
		t.Errorf("unknown user: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0600)
	if err := Setup(file, "postfix", "postdrop"); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("queue_directory is a file: %v", err)
	}
}

func TestTrigger(t *testing.T) {
	q := newTestQueue(t)
	if err := Trigger(q.Dir, "qmgr", QmgrScanAll); !errors.Is(err, ErrDown) {
		t.Errorf("no fifo: %v", err)
	}
	ch, closer, err := Listen(q.Dir, "qmgr")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []byte{QmgrFlushDead, QmgrScanAll} {
		if err := Trigger(q.Dir, "qmgr", b); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []byte{QmgrFlushDead, QmgrScanAll} {
		select {
		case got := <-ch:
			if got != want {
				t.Errorf("got %c, want %c", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("trigger not received")
		}
	}
	fi, _ := os.Stat(filepath.Join(q.Dir, Public, "qmgr"))
	if fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0622 {
		t.Errorf("fifo mode %v", fi.Mode())
	}
	closer.Close()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("channel not closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after Close")
	}
	// FIFO present, nobody reading: the mail system is down.
	if err := Trigger(q.Dir, "qmgr", Wakeup); !errors.Is(err, ErrDown) {
		t.Errorf("no reader: %v", err)
	}
}

// TestRecordSize checks the sizes the real Postfix 3.7 reported (qmgr
// size=, records from postcat -o) for content of several shapes.
func TestRecordSize(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, c := range []struct {
		name    string
		content string
		want    int64
	}{
		{"empty", "", 0},
		{"one line", "body\n", 6},
		{"no final newline", "body", 8},
		{"empty lines", "\n\n", 4},
		{"127 and 128 bytes", a(127) + "\n" + a(128) + "\n", 129 + 131},
		{"2048 bytes", a(2048) + "\n", 2051 + 2},
		{"2049 bytes", a(2049) + "\n", 2051 + 3},
		{"3000 bytes", a(3000) + "\n", 2051 + 955},
		{"4096 bytes", a(4096) + "\n", 2051 + 2051 + 2},
		{"5000 bytes", a(5000) + "\n", 2051 + 2051 + 907},
		{"2048 bytes unterminated", a(2048), 2051 + 2},
	} {
		r := NewRecordSize(0)
		// Byte by byte and at once must agree.
		for i := 0; i < len(c.content); i++ {
			r.Write([]byte{c.content[i]})
		}
		whole := NewRecordSize(2048)
		whole.Write([]byte(c.content))
		if r.Size() != c.want || whole.Size() != c.want {
			t.Errorf("%s: size %d (written at once %d), want %d", c.name, r.Size(), whole.Size(), c.want)
		}
	}
	r := NewRecordSize(10)
	r.Write([]byte(strings.Repeat("x", 25) + "\n"))
	if want := int64(12 + 12 + 7); r.Size() != want {
		t.Errorf("limit 10: size %d, want %d", r.Size(), want)
	}
}

// TestMessageSizeRecorded checks that a committed file keeps the record
// size and that a file in the older two-number layout still reads.
func TestMessageSizeRecorded(t *testing.T) {
	q := newTestQueue(t)
	id, err := q.Enqueue(Incoming, &Message{Sender: "a@x", Recipients: []Recipient{{Address: "b@y"}}}, strings.NewReader("Subject: x\n\nbody"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := q.ReadEnvelope(Incoming, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != 16 || m.MessageSize != 12+2+8 {
		t.Errorf("Size %d MessageSize %d, want 16 and 22", m.Size, m.MessageSize)
	}
	p := q.Path(Incoming, id)
	b, _ := os.ReadFile(p)
	s := string(b)
	i := strings.Index(s, "content ")
	line := s[i : i+strings.IndexByte(s[i:], '\n')]
	f := strings.Fields(line)
	old := strings.Replace(s, line, "content "+f[1]+" "+f[2], 1)
	// The offset shrinks by the width of the dropped number.
	off, _ := strconv.ParseInt(f[1], 10, 64)
	old = strings.Replace(old, f[1], fmt.Sprintf("%0*d", numWidth, off-numWidth-1), 1)
	if err := os.WriteFile(p, []byte(old), 0600); err != nil {
		t.Fatal(err)
	}
	m, err = q.ReadEnvelope(Incoming, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != 16 || m.MessageSize != 16 {
		t.Errorf("old layout: Size %d MessageSize %d, want 16 and 16", m.Size, m.MessageSize)
	}
}

// A logfile entry keeps every field AppendLog was given, and a value too
// long for ReadLog is cut, not left to make the logfile unreadable.
func TestLogEntries(t *testing.T) {
	q := newTestQueue(t)
	const id = "ABCDEF123"
	long := strings.Repeat("x", 2<<20)
	for _, e := range []LogEntry{
		{Recipient: "bob@x", Orig: "bob", Status: "5.1.1", Action: "failed", Reason: "unknown user", NotifySender: "owner-list@x"},
		{Recipient: "carol@x", Status: "5.3.0", Action: "failed", Reason: long},
	} {
		if err := q.AppendLog(Bounce, id, e); err != nil {
			t.Fatal(err)
		}
	}
	log, err := q.ReadLog(Bounce, id)
	if err != nil || len(log) != 2 {
		t.Fatalf("ReadLog = %d entries, %v", len(log), err)
	}
	if want := (LogEntry{Recipient: "bob@x", Orig: "bob", Status: "5.1.1", Action: "failed", Reason: "unknown user", NotifySender: "owner-list@x"}); log[0] != want {
		t.Errorf("entry %+v, want %+v", log[0], want)
	}
	if log[1].Recipient != "carol@x" || len(log[1].Reason) != maxLogValue {
		t.Errorf("long entry: %s, reason of %d bytes", log[1].Recipient, len(log[1].Reason))
	}
}

// A file is found wherever a hash setting put it: hashed or not, at any
// depth.
func TestLocateAnyHashDepth(t *testing.T) {
	q := newTestQueue(t)
	q.HashDepth = 2
	id := enqueue(t, q, Deferred, &Message{Sender: "a@b", Recipients: []Recipient{{Address: "x@y"}}}, "x")
	for _, c := range []struct {
		depth int
		names map[string]bool
	}{{0, nil}, {1, map[string]bool{Deferred: true}}, {3, map[string]bool{Deferred: true}}, {2, map[string]bool{}}} {
		q.HashDepth, q.HashNames = c.depth, c.names
		if _, err := q.ReadEnvelope(Deferred, id); err != nil {
			t.Errorf("depth %d, hashed %v: %v", c.depth, c.names, err)
		}
	}
	if _, err := q.ReadEnvelope(Deferred, "ABCDEF9999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}

// A queue file written before recipients' DSN parameters and the
// message's SMTP attributes were recorded is still read, and its
// recipients' status can still be set.
func TestReadsFileFromBeforeDSN(t *testing.T) {
	q := newTestQueue(t)
	b, err := os.ReadFile("testdata/before-dsn.queue")
	if err != nil {
		t.Fatal(err)
	}
	id := "C0C4998A95B"
	if err := os.WriteFile(q.Path(Active, id), b, 0600); err != nil {
		t.Fatal(err)
	}
	f, err := q.Open(Active, id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := []Recipient{{Address: "bob@example.org", Orig: "bobby@example.org"}, {Address: "carol@example.net"}}
	for i, r := range f.Recipients {
		if r.Address != want[i].Address || r.Orig != want[i].Orig || r.Notify != "" || r.ORCPT != "" || r.Status != Pending {
			t.Errorf("recipient %d = %+v", i, r)
		}
	}
	if f.Sender != "alice@example.com" || f.Attrs[AttrENVID] != "" {
		t.Errorf("envelope = %+v", f.Message)
	}
	if err := f.SetStatus(1, Delivered); err != nil {
		t.Fatal(err)
	}
	m, err := q.ReadEnvelope(Active, id)
	if err != nil || m.Recipients[1].Status != Delivered || m.Recipients[0].Status != Pending {
		t.Fatalf("after SetStatus: %+v, %v", m, err)
	}
	got, _ := io.ReadAll(f.Content())
	if string(got) != "Subject: old\n\nbody\n" {
		t.Errorf("content = %q", got)
	}
}

// Recipients' NOTIFY and ORCPT and the message's SMTP attributes survive
// the queue file; a recipient with them keeps its status updates in place.
func TestDSNRoundTrip(t *testing.T) {
	q := newTestQueue(t)
	m := &Message{Sender: "a@x", Recipients: []Recipient{
		{Address: "b@y", Notify: "SUCCESS,DELAY", ORCPT: "rfc822;B@Y"},
		{Address: "c@y"},
		{Address: "d@y", ORCPT: "utf-8;d\\x{E9}@y"},
	}, Attrs: map[string]string{AttrENVID: "QQ314159", AttrRET: "HDRS", AttrBody: "8BITMIME", AttrSMTPUTF8: "1",
		AttrClientName: "mx.example", AttrClientAddr: "192.0.2.1", AttrHELO: "mx", AttrProtocol: "ESMTP", AttrSASLUser: "u"}}
	id := enqueue(t, q, Incoming, m, "Subject: x\n\nbody\n")
	f, err := q.Open(Incoming, id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, r := range f.Recipients {
		w := m.Recipients[i]
		if r.Address != w.Address || r.Notify != w.Notify || r.ORCPT != w.ORCPT {
			t.Errorf("recipient %d = %+v, want %+v", i, r, w)
		}
	}
	for k, v := range m.Attrs {
		if f.Attrs[k] != v {
			t.Errorf("attr %s = %q, want %q", k, f.Attrs[k], v)
		}
	}
	if err := f.SetStatus(0, Bounced); err != nil {
		t.Fatal(err)
	}
	got, err := q.ReadEnvelope(Incoming, id)
	if err != nil || got.Recipients[0].Status != Bounced || got.Recipients[0].ORCPT != "rfc822;B@Y" {
		t.Fatalf("after SetStatus: %+v, %v", got, err)
	}
}
