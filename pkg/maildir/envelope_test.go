package maildir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A header with folded fields, repeated fields (the first counts), 8-bit
// bytes, CRLF line ends and odd spacing; Sender and Bcc are missing.
const envMsg = "Received: from x\r\n\tby y\r\n" +
	"Date: Fri, 27 Nov 2026 07:00:00 +0000\r\n" +
	"Subject: a folded\r\n  subject \xe4\xf6\r\n" +
	"From: \"M\xc3\xbcller\" <m@example.org>\r\n" +
	"To: a@example.org,\r\n\tb@example.org\r\n" +
	"To: not@this.one\r\n" +
	"cc:c@example.org\r\n" +
	"Reply-To : r@example.org\r\n" +
	"In-Reply-To: <x@y>\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"\r\n" +
	"Subject: in the body\r\n"

var envWant = Envelope{
	Date:      "Fri, 27 Nov 2026 07:00:00 +0000",
	Subject:   "a folded  subject \xe4\xf6",
	From:      "\"M\xc3\xbcller\" <m@example.org>",
	ReplyTo:   "r@example.org",
	To:        "a@example.org,\tb@example.org",
	Cc:        "c@example.org",
	InReplyTo: "<x@y>",
	MessageID: "<1@example.org>",
}

func envelopeOf(t *testing.T, mb *Mailbox, uid uint32) Envelope {
	t.Helper()
	st, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	m := st.Find(uid)
	if m == nil {
		t.Fatalf("no UID %d", uid)
	}
	loadEnvelopes(mb, st.Messages)
	e, ok := m.Envelope()
	if !ok {
		t.Fatalf("UID %d: no envelope", uid)
	}
	return e
}

// TestEnvelopeDelivered: a message the store saves has its envelope from
// what it wrote (the file is not read again), kept in the index.
func TestEnvelopeDelivered(t *testing.T) {
	s := testStore(t)
	mb := inbox(t, s)
	uid, path, err := mb.Deliver(strings.NewReader(envMsg), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Emptied behind the store's back: the envelope still comes from
	// the delivery.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if e := envelopeOf(t, mb, uid); e != envWant {
		t.Fatalf("got %+v\nwant %+v", e, envWant)
	}
	// From the index, in a new Sync.
	age(t, mb.Dir)
	if e := envelopeOf(t, mb, uid); e != envWant {
		t.Fatalf("from the index: %+v", e)
	}
	x, err := readIndexFile(mb.Dir)
	if err != nil || !x.fresh(mb.Dir) {
		t.Fatalf("index not fresh: %v", err)
	}
	// A copy keeps it.
	if err := s.Create("Other"); err != nil {
		t.Fatal(err)
	}
	other, err := s.Mailbox("Other")
	if err != nil {
		t.Fatal(err)
	}
	uids, err := mb.Copy(other, uid)
	if err != nil {
		t.Fatal(err)
	}
	if e := envelopeOf(t, other, uids[0]); e != envWant {
		t.Fatalf("copy: %+v", e)
	}
}

// TestEnvelopeForeign: files the store did not write (another program's
// delivery) are read once, then known from the index.
func TestEnvelopeForeign(t *testing.T) {
	s := testStore(t)
	mb := inbox(t, s)
	if _, err := mb.Sync(); err != nil {
		t.Fatal(err)
	}
	files := map[string]struct {
		data string
		want Envelope
	}{
		"1.M1P1.vm":         {envMsg, envWant},
		"2.M1P1.vm":         {"Subject: only a header\nFrom: f@x", Envelope{Subject: "only a header", From: "f@x"}},
		"3.M1P1.vm":         {"", Envelope{}},
		"4.M1P1.vm":         {"\nSubject: body\n", Envelope{}},
		"5.M1P1.vm":         {"Subject:\n \n\tfolded\n\n", Envelope{Subject: "folded"}},
		"6.M1P1.vm:2,S":     {"subject: " + strings.Repeat("x", 3*MaxEnvelopeField) + "\n\n", Envelope{Subject: strings.Repeat("x", MaxEnvelopeField)}},
		"7.M1P1.vm,S=20:2,": {"no colon line\nTo: t\n\nb", Envelope{To: "t"}},
		"8.M1P1.vm":         {"Date: d\n" + strings.Repeat("X-Long: "+strings.Repeat("y", 1000)+"\n", 100) + "Message-ID: <m>\n", Envelope{Date: "d", MessageID: "<m>"}},
	}
	for name, f := range files {
		sub := "new"
		if strings.Contains(name, ":2,") {
			sub = "cur"
		}
		if err := os.WriteFile(filepath.Join(mb.Dir, sub, name), []byte(f.data), 0600); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) {
		st, err := mb.Sync()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Messages) != len(files) {
			t.Fatalf("%s: %d messages", what, len(st.Messages))
		}
		loadEnvelopes(mb, st.Messages)
		for i := range st.Messages {
			m := &st.Messages[i]
			e, ok := m.Envelope()
			if want := files[m.File].want; !ok || e != want {
				t.Errorf("%s: %s: %v %+v, want %+v", what, m.File, ok, e, want)
			}
		}
	}
	// Opening the folder lists it; the headers wait for LoadEnvelopes.
	st, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	for i := range st.Messages {
		if _, ok := st.Messages[i].Envelope(); ok {
			t.Errorf("%s: envelope read by Sync", st.Messages[i].File)
		}
	}
	check("first sync")
	// Now from the index alone: the files are emptied (their sizes
	// come from the index too).
	age(t, mb.Dir)
	for name := range files {
		sub := "new"
		if strings.Contains(name, ":2,") {
			sub = "cur"
		}
		os.Truncate(filepath.Join(mb.Dir, sub, name), 0)
	}
	age(t, mb.Dir)
	check("index")
}

// TestEnvelopeOldIndex: an index of the version before envelopes is
// rebuilt, reading the headers.
func TestEnvelopeOldIndex(t *testing.T) {
	s := testStore(t)
	mb := inbox(t, s)
	uid, _, err := mb.Deliver(strings.NewReader(envMsg), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Sync(); err != nil {
		t.Fatal(err)
	}
	age(t, mb.Dir)
	// The same index as version 2 wrote it: no envelope field.
	x, err := readIndexFile(mb.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x.msgs {
		x.msgs[i].env = ""
	}
	b := marshalIndex(x)
	b = b[:len(b)-4]
	old := append([]byte("PDIDX2\n"), b[len(indexMagic):]...)
	if err := os.WriteFile(filepath.Join(mb.Dir, IndexName), old, 0600); err != nil {
		t.Fatal(err)
	}
	if e := envelopeOf(t, mb, uid); e != envWant {
		t.Fatalf("%+v", e)
	}
}

// TestEnvelopeDovecotLDA: a message the real dovecot-lda delivered is read
// for its envelope once, then known from the index.
func TestEnvelopeDovecotLDA(t *testing.T) {
	d := newDovecot(t)
	d.LDA(strings.ReplaceAll(envMsg, "\r\n", "\n"))
	mb := inbox(t, d.Store)
	uid := uint32(1)
	if e := envelopeOf(t, mb, uid); e != envWant {
		t.Fatalf("got %+v\nwant %+v", e, envWant)
	}
	st, _ := mb.Sync()
	m := st.Find(uid)
	age(t, mb.Dir)
	if err := os.Truncate(filepath.Join(mb.Dir, m.Path()), 0); err != nil {
		t.Fatal(err)
	}
	age(t, mb.Dir)
	if e := envelopeOf(t, mb, uid); e != envWant {
		t.Fatalf("from the index: %+v", e)
	}
}

func loadEnvelopes(mb *Mailbox, msgs []Message) {
	if mb.LoadEnvelopes(msgs) > 0 {
		mb.KeepEnvelopes(msgs)
	}
}
