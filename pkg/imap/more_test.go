package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"postdove/pkg/doveconf"
	"postdove/pkg/handoff"
	"postdove/pkg/maildir"
)

// TestExamineIsReadOnly: EXAMINE neither sets \Seen nor lets STORE or
// EXPUNGE change the mailbox.
func TestExamineIsReadOnly(t *testing.T) {
	r := newRig(t)
	r.deliver("INBOX", testMessage(1))
	c := r.client(nil)
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err == nil {
		t.Error("STORE in EXAMINE succeeded")
	}
	mb, _ := r.store.Mailbox("INBOX")
	st, _ := mb.Sync()
	if len(st.Messages) != 1 || st.Messages[0].Info != "" {
		t.Errorf("on disk after EXAMINE: %+v", st.Messages)
	}
}

// TestConnectionClosedLog: a client that goes without LOGOUT is logged as
// Dovecot logs it.
func TestConnectionClosedLog(t *testing.T) {
	r := newRig(t)
	rc := r.raw(t)
	rc.send("a1 NOOP\n")
	rc.c.Close()
	line := r.log.wait(t, "Disconnected:")
	if !strings.HasPrefix(line, "Disconnected: Connection closed (NOOP finished 0.") || !strings.Contains(line, " secs ago) in=") {
		t.Errorf("log %q", line)
	}
}

// TestAutoMailboxes: auto = create and subscribe in the namespace's
// mailbox blocks make and subscribe the folders at login; special_use
// shows in LIST.
func TestAutoMailboxes(t *testing.T) {
	home := tempHome(t)
	st := maildir.OpenStore(filepath.Join(home, "Maildir"), maildir.Options{UID: -1, GID: -1})
	ns := newNamespace([]doveconf.Namespace{{Name: "inbox", Inbox: true, Mailboxes: []doveconf.Mailbox{
		{Name: "Trash", SpecialUse: `\Trash`, Auto: "subscribe"},
		{Name: "Drafts", SpecialUse: `\Drafts`, Auto: "create"},
		{Name: "Junk", SpecialUse: `\Junk`, Auto: "no"},
	}}})
	autoMailboxes(st, &ns)
	names, _ := st.List()
	subs, _ := st.Subscriptions()
	if strings.Join(names, " ") != "INBOX Drafts Trash" || strings.Join(subs, " ") != "Trash" {
		t.Errorf("mailboxes %q subscribed %q", names, subs)
	}
	if a := ns.specialUse("Drafts"); len(a) != 1 || a[0] != imap.MailboxAttrDrafts {
		t.Errorf("Drafts: %v", a)
	}
}

// TestOpenStore: the mail locations the store can serve, and a clear
// error for the others.
func TestOpenStore(t *testing.T) {
	for mail, want := range map[string]string{
		"maildir:~/Maildir":              "/home/alice/Maildir",
		"maildir:/var/mail/%u":           "/var/mail/alice",
		"":                               "/home/alice/Maildir",
		"maildir:~/Maildir:LAYOUT=fs":    "LAYOUT=fs is not supported",
		"maildir:~/M:INDEX=/var/idx/%u":  "INDEX= and CONTROL= are not supported",
		"mbox:~/mail:INBOX=/var/mail/%u": "only the maildir format",
	} {
		st, err := OpenStore(&handoff.Info{User: "alice", Home: "/home/alice", Mail: mail})
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = st.Root
		}
		if !strings.Contains(got, want) {
			t.Errorf("%q: %q, want %q", mail, got, want)
		}
	}
}

// TestEnvelopeReadByFetch: SELECT of files another program wrote does not
// read them; the first FETCH ENVELOPE does, and leaves the envelopes in
// postdove.index for the next process.
func TestEnvelopeReadByFetch(t *testing.T) {
	r := newRig(t)
	mb, err := r.store.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("%d.M%dP1.vm", 1700000000+i, i)
		if err := os.WriteFile(filepath.Join(mb.Dir, "new", name), []byte(testMessage(i)), 0600); err != nil {
			t.Fatal(err)
		}
	}
	known := func() int {
		st, err := mb.Sync()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := range st.Messages {
			if _, ok := st.Messages[i].Envelope(); ok {
				n++
			}
		}
		return n
	}
	c := r.client(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if n := known(); n != 0 {
		t.Fatalf("%d envelopes read by SELECT", n)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 3 {
		t.Fatal(len(msgs), err)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("test %d", i+1); m.Envelope == nil || m.Envelope.Subject != want || len(m.Envelope.From) != 1 || m.Envelope.From[0].Host != "example.org" {
			t.Errorf("message %d: %+v, want subject %q", i+1, m.Envelope, want)
		}
	}
	if n := known(); n != 3 {
		t.Fatalf("%d envelopes in the index after FETCH, want 3", n)
	}
}
