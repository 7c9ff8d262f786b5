package imap

import (
	"bufio"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postdove/pkg/maildir"
)

// TestLoginReply checks the reply to the login command and that input the
// login side had read already is served first.
func TestLoginReply(t *testing.T) {
	r := newRig(t)
	conn, err := net.Dial("tcp", r.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	br.ReadString('\n')
	// LOGIN and the next command in one packet: the second is in Input.
	io.WriteString(conn, "a1 LOGIN alice secret\r\na2 NAMESPACE\r\na3 LOGOUT\r\n")
	var got []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			break
		}
		got = append(got, strings.TrimRight(l, "\r\n"))
	}
	want := []string{"* NAMESPACE ((\"\" \".\")) NIL NIL", "a2 OK NAMESPACE completed", "* BYE Logging out", "a3 OK LOGOUT completed"}
	if len(got) != 5 || !strings.HasPrefix(got[0], "a1 OK [CAPABILITY IMAP4rev1 ") || !strings.HasSuffix(got[0], "] Logged in") ||
		strings.Join(got[1:], "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q", got)
	}
	for _, c := range []string{" IDLE", " UIDPLUS", " MOVE", " SPECIAL-USE", " LIST-STATUS", " NAMESPACE"} {
		if !strings.Contains(got[0], c) {
			t.Errorf("capability %s missing: %s", c, got[0])
		}
	}
	line := r.log.wait(t, "Disconnected:")
	if !strings.HasPrefix(line, "Disconnected: Logged out in=") || !strings.HasSuffix(line, " deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0") {
		t.Errorf("log %q", line)
	}
}

// TestThunderbirdOpening replays a Thunderbird-like session with go-imap's
// client: capabilities, LIST with SPECIAL-USE, SELECT, flags, headers and
// bodies, Trash made on first use, APPEND to Sent.
func TestThunderbirdOpening(t *testing.T) {
	r := newRig(t)
	r.deliverN(3)
	c := r.client(nil)
	caps, err := c.Capability().Wait()
	if err != nil || !caps.Has(imap.CapIdle) || !caps.Has(imap.CapSpecialUse) {
		t.Fatalf("caps %v %v", caps, err)
	}
	list := func() map[string][]imap.MailboxAttr {
		l, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]imap.MailboxAttr{}
		for _, d := range l {
			out[d.Mailbox] = d.Attrs
		}
		return out
	}
	if l := list(); len(l) != 1 || len(l["INBOX"]) != 0 {
		t.Fatalf("LIST %v", l)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 3 || sel.UIDNext != 4 || sel.UIDValidity == 0 {
		t.Fatalf("SELECT %+v %v", sel, err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1, 2, 3), &imap.FetchOptions{Flags: true, UID: true}).Collect()
	if err != nil || len(msgs) != 3 || msgs[2].UID != 3 || len(msgs[0].Flags) != 0 {
		t.Fatalf("UID FETCH FLAGS %+v %v", msgs, err)
	}
	hdr := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"From", "Subject"}, Peek: true}
	msgs, err = c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, BodySection: []*imap.FetchItemBodySection{hdr}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH headers %v %v", msgs, err)
	}
	m := msgs[0]
	want := "From: Bob <bob@example.org>\r\nSubject: test 2\r\n\r\n"
	if got := string(m.FindBodySection(hdr)); got != want {
		t.Errorf("HEADER.FIELDS = %q", got)
	}
	if m.Envelope == nil || m.Envelope.Subject != "test 2" || len(m.Envelope.From) != 1 || m.Envelope.From[0].Host != "example.org" || m.Envelope.MessageID != "m2@example.org" {
		t.Errorf("ENVELOPE %+v", m.Envelope)
	}
	full := testMessage(2)
	if m.RFC822Size != int64(len(full)+strings.Count(full, "\n")) {
		t.Errorf("RFC822.SIZE %d", m.RFC822Size)
	}
	if bs, ok := m.BodyStructure.(*imap.BodyStructureSinglePart); !ok || bs.Type != "text" || bs.Text == nil || bs.Text.NumLines != 2 {
		t.Errorf("BODYSTRUCTURE %#v", m.BodyStructure)
	}
	// The body, not peeked: \Seen is set and reported.
	body := &imap.FetchItemBodySection{}
	part := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Partial: &imap.SectionPartial{Offset: 2, Size: 3}}
	msgs, err = c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{body, part}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatal(err)
	}
	if got := string(msgs[0].FindBodySection(body)); got != strings.ReplaceAll(full, "\n", "\r\n") {
		t.Errorf("BODY[] = %q", got)
	}
	if got := string(msgs[0].FindBodySection(part)); got != "dy " {
		t.Errorf("BODY[TEXT]<2.3> = %q", got)
	}
	if len(msgs[0].Flags) != 1 || msgs[0].Flags[0] != imap.FlagSeen {
		t.Errorf("flags after BODY[] %v", msgs[0].Flags)
	}
	bin := &imap.FetchItemBinarySection{Part: []int{1}, Peek: true}
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{bin}}).Collect()
	if err != nil || len(msgs) != 1 || string(msgs[0].FindBinarySection(bin)) != "body 1\r\nline two\r\n" {
		t.Errorf("BINARY[1] %v %v", msgs, err)
	}
	// Thunderbird's first delete: Trash does not exist, so it is created
	// and seen with \Trash.
	if _, err := c.Move(imap.SeqSetNum(1), "Trash").Wait(); err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
		t.Fatalf("MOVE to missing Trash: %v", err)
	}
	if err := c.Create("Trash", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if l := list(); len(l["Trash"]) != 1 || l["Trash"][0] != imap.MailboxAttrTrash {
		t.Fatalf("LIST after CREATE Trash: %v", l)
	}
	mv, err := c.Move(imap.SeqSetNum(1), "Trash").Wait()
	if err != nil || mv.UIDValidity == 0 || mv.DestUIDs.String() != "1" || mv.SourceUIDs.String() != "1" {
		t.Fatalf("MOVE %+v %v", mv, err)
	}
	if st, err := c.Status("Trash", &imap.StatusOptions{NumMessages: true, UIDNext: true}).Wait(); err != nil || *st.NumMessages != 1 || st.UIDNext != 2 {
		t.Fatalf("STATUS Trash %+v %v", st, err)
	}
	// Sending: APPEND to Sent, after creating it.
	if err := c.Create("Sent", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sent := "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: re\r\n\r\nthanks\r\n"
	ac := c.Append("Sent", int64(len(sent)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, "$Label1"}})
	io.WriteString(ac, sent)
	ac.Close()
	ad, err := ac.Wait()
	if err != nil || ad.UID != 1 {
		t.Fatalf("APPEND %+v %v", ad, err)
	}
	mb, _ := r.store.Mailbox("Sent")
	st, _ := mb.Sync()
	if len(st.Messages) != 1 || st.Messages[0].Flags() != "S" || len(st.Messages[0].Keywords(&st.Keywords)) != 1 {
		t.Errorf("Sent on disk: %+v", st.Messages)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	line := r.log.wait(t, "Disconnected:")
	if !strings.Contains(line, "Logged out") || !strings.Contains(line, "trashed=1") || !strings.Contains(line, "expunged=1") {
		t.Errorf("log %q", line)
	}
}

// TestIdleSeesDelivery: a client in IDLE hears of mail that other programs
// deliver (dovecot-lda's way with a UID, Postfix local's plain new/ file)
// within a second.
func TestIdleSeesDelivery(t *testing.T) {
	r := newRig(t)
	r.deliver("INBOX", testMessage(1))
	exists := make(chan uint32, 10)
	c := r.client(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists <- *d.NumMessages
		}
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	expect := func(n uint32) {
		t.Helper()
		select {
		case got := <-exists:
			if got != n {
				t.Fatalf("EXISTS %d, want %d", got, n)
			}
		case <-time.After(time.Second):
			t.Fatalf("no EXISTS %d within a second", n)
		}
	}
	time.Sleep(50 * time.Millisecond)
	r.deliver("INBOX", testMessage(2))
	expect(2)
	if _, err := maildir.Deliver(filepath.Join(r.home, "Maildir"), strings.NewReader(testMessage(3)), maildir.Options{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	expect(3)
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].UID != 3 || msgs[0].Envelope.Subject != "test 3" {
		t.Fatalf("FETCH 3 %+v %v", msgs, err)
	}
}

// TestTwoSessions: two clients on one mailbox; one expunges and changes
// flags; the other keeps its sequence numbers until it is told, and is
// told at its next NOOP or while it IDLEs.
func TestTwoSessions(t *testing.T) {
	r := newRig(t)
	r.deliverN(4)
	var mu sync.Mutex
	var expunged []uint32
	flags := make(chan *imapclient.FetchMessageData, 10)
	b := r.client(&imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { mu.Lock(); expunged = append(expunged, seq); mu.Unlock() },
		Fetch:   func(m *imapclient.FetchMessageData) { flags <- m },
	})
	a := r.client(nil)
	for _, c := range []*imapclient.Client{a, b} {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	ex, err := a.Expunge().Collect()
	if err != nil || len(ex) != 1 || ex[0] != 2 {
		t.Fatalf("A's EXPUNGE %v %v", ex, err)
	}
	// B has not been told: its 3 is still the third message.
	subj := func(c *imapclient.Client, seq uint32) string {
		msgs, err := c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{Envelope: true}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("FETCH %d: %v %v", seq, msgs, err)
		}
		return msgs[0].Envelope.Subject
	}
	if got := subj(b, 3); got != "test 3" {
		t.Errorf("B's 3 before NOOP is %q", got)
	}
	if got := subj(a, 2); got != "test 3" {
		t.Errorf("A's 2 after EXPUNGE is %q", got)
	}
	if err := b.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	// B was told of A's \Deleted on 2 before the EXPUNGE.
	if m := <-flags; m.SeqNum != 2 {
		t.Errorf("B's first FETCH is for %d", m.SeqNum)
	}
	mu.Lock()
	if len(expunged) != 1 || expunged[0] != 2 {
		t.Errorf("B saw EXPUNGE %v", expunged)
	}
	mu.Unlock()
	if got := subj(b, 2); got != "test 3" {
		t.Errorf("B's 2 after NOOP is %q", got)
	}
	// A flags message 1; B, idling, sees FETCH FLAGS.
	idle, err := b.Idle()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := a.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-flags:
		buf, _ := m.Collect()
		if buf.SeqNum != 1 || len(buf.Flags) != 1 || buf.Flags[0] != imap.FlagFlagged {
			t.Errorf("B's FETCH %+v", buf)
		}
	case <-time.After(time.Second):
		t.Fatal("B did not see A's flag change within a second")
	}
	idle.Close()
	idle.Wait()
}

// TestMailboxNames: names that could leave the Maildir are refused with
// Dovecot's texts; none creates anything outside it.
func TestMailboxNames(t *testing.T) {
	r := newRig(t)
	c := r.client(nil)
	for name, want := range map[string]string{
		"../x":  "Invalid mailbox name: Begins with hierarchy separator",
		"a/b":   "Invalid mailbox name: Name must not have '/' characters",
		"~x":    "Invalid mailbox name: Begins with '~'",
		"a..b":  "Invalid mailbox name: Has adjacent hierarchy separators",
		".x":    "Invalid mailbox name: Begins with hierarchy separator",
		"INBOX": "Mailbox already exists",
	} {
		err := c.Create(name, nil).Wait()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CREATE %q: %v, want %q", name, err, want)
		}
	}
	for _, name := range []string{"a%b", "a*b", "x.", "a.~b"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Errorf("CREATE %q: %v", name, err)
		}
	}
	for _, d := range []string{".a%b", ".a*b", ".x", ".a.~b"} {
		if !exists(filepath.Join(r.home, "Maildir", d, "cur")) {
			t.Errorf("no folder %s", d)
		}
	}
	if exists(filepath.Join(r.home, "x")) || exists(filepath.Join(r.home, "Maildir", "a")) {
		t.Error("a folder outside the Maildir++ layout")
	}
	l, err := c.List("", "%", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range l {
		names = append(names, d.Mailbox)
	}
	if got := strings.Join(names, " "); got != "INBOX a a%b a*b x" {
		t.Errorf("LIST %% = %s", got)
	}
	if err := c.Rename("x", "../y", nil).Wait(); err == nil {
		t.Error("RENAME to ../y succeeded")
	}
	if _, err := c.Select("nope", nil).Wait(); err == nil || !strings.Contains(err.Error(), "Mailbox doesn't exist: nope") {
		t.Errorf("SELECT nope: %v", err)
	}
}

// TestSearch covers the keys Thunderbird and mutt use.
func TestSearch(t *testing.T) {
	r := newRig(t)
	r.deliverN(5)
	c := r.client(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Store(imap.SeqSetNum(2, 4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close()
	for _, tc := range []struct {
		name string
		cr   imap.SearchCriteria
		uid  bool
		want string
	}{
		{"unseen", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, false, "1,3,5"},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "TEST 3"}}}, false, "3"},
		{"body", imap.SearchCriteria{Body: []string{"body 4"}}, true, "4"},
		{"text", imap.SearchCriteria{Text: []string{"bob@example"}}, false, "1:5"},
		{"not-or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{SeqNum: []imap.SeqSet{imap.SeqSetNum(1)}}, {Flag: []imap.Flag{imap.FlagSeen}}}}}, false, "1:2,4"},
		{"star", imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 0, Stop: 0}}}}, false, "5"},
		{"uid range", imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 4, Stop: 0}}}}, true, "4:5"},
		{"larger", imap.SearchCriteria{Larger: 1000}, false, ""},
		{"sent", imap.SearchCriteria{SentSince: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}, false, "1:5"},
	} {
		var got string
		if tc.uid {
			d, err := c.UIDSearch(&tc.cr, nil).Wait()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got = d.All.String()
		} else {
			d, err := c.Search(&tc.cr, nil).Wait()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got = d.All.String()
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
