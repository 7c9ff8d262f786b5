package cleanup

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/pkg/maillog"
	"postdove/pkg/maps"
	"postdove/pkg/postconf"
	"postdove/pkg/queue"
)

// setup makes a config dir with main.cf (base settings plus extra), a
// queue and a log file; it returns the cleanup service, the queue and
// the log path.
func setup(t *testing.T, extra string) (*Cleanup, *queue.Queue, string) {
	t.Helper()
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	logf := filepath.Join(dir, "maillog")
	main := "queue_directory = " + qdir + "\n" +
		"myhostname = vm2.example.ops\nmydomain = example.ops\nmyorigin = $mydomain\n" +
		"mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\n" +
		"maillog_file = " + logf + "\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0644); err != nil {
		t.Fatal(err)
	}
	cfg, err := postconf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Setup(qdir, "root", "root"); err != nil {
		t.Fatal(err)
	}
	log, err := maillog.New(maillog.Options{SyslogName: "postfix", Program: "cleanup", File: logf, Hostname: "vm2"})
	if err != nil {
		t.Fatal(err)
	}
	q := queue.New(qdir)
	return New(cfg, q, log), q, logf
}

func readQueued(t *testing.T, q *queue.Queue, id string) (*queue.Message, string) {
	t.Helper()
	f, err := q.Open(queue.Incoming, id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := q.ReadEnvelope(queue.Incoming, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f.Content())
	if err != nil {
		t.Fatal(err)
	}
	return m, string(b)
}

func rcpts(m *queue.Message) []string {
	var out []string
	for _, r := range m.Recipients {
		out = append(out, r.Address)
	}
	return out
}

func TestLocalSubmission(t *testing.T) {
	c, q, logf := setup(t, "")
	when := time.Date(2026, 11, 1, 22, 21, 1, 0, time.UTC)
	var pickupID string
	id, err := c.Process(&Submission{Sender: "root", Recipients: []string{"alice", "bob@vm3"}, FullName: "Charlie Root",
		UID: 0, Arrival: when, Queued: func(id string) { pickupID = id }},
		strings.NewReader("Subject: hi\nTo: alice, Bob <bob@vm3>\n\nbody line\n"))
	if err != nil {
		t.Fatal(err)
	}
	if pickupID != id {
		t.Errorf("Queued got %q, Process returned %q", pickupID, id)
	}
	m, content := readQueued(t, q, id)
	if m.Sender != "root@example.ops" {
		t.Errorf("sender %q", m.Sender)
	}
	if got := strings.Join(rcpts(m), " "); got != "alice@example.ops bob@vm3.example.ops" {
		t.Errorf("recipients %q", got)
	}
	lines := strings.Split(content, "\n")
	if !strings.HasPrefix(lines[0], "Received: by vm2.example.ops (Postfix, from userid 0)") ||
		!strings.HasPrefix(lines[1], "\tid ") || !strings.HasSuffix(lines[1], "; Sun,  1 Nov 2026 22:21:01 +0000 (UTC)") {
		t.Errorf("Received header:\n%s\n%s", lines[0], lines[1])
	}
	for _, want := range []string{
		"\nSubject: hi\n", "\nTo: alice@example.ops, Bob <bob@vm3.example.ops>\n",
		"\nMessage-Id: <20261101222101.", "@vm2.example.ops>\n",
		"\nDate: Sun,  1 Nov 2026 22:21:01 +0000 (UTC)\n",
		"\nFrom: Charlie Root <root@example.ops>\n\nbody line\n",
	} {
		if !strings.Contains(content, want) {
			t.Errorf("content lacks %q:\n%s", want, content)
		}
	}
	log, _ := os.ReadFile(logf)
	if !strings.Contains(string(log), "postfix/cleanup[") || !strings.Contains(string(log), "]: "+id+": message-id=<20261101222101.") {
		t.Errorf("log: %s", log)
	}
}

func TestHeadersKeptAndBcc(t *testing.T) {
	c, q, _ := setup(t, "")
	msg := "From: Alice <alice@x.org>\nDate: Mon, 2 Nov 2026 10:00:00 +0000\nMessage-ID: <abc@x.org>\n" +
		"To: a@b.org\nBcc: secret@b.org,\n  other@b.org\n\nhello\n"
	id, err := c.Process(&Submission{Sender: "alice@x.org", Recipients: []string{"a@b.org", "secret@b.org"}, UID: 1000, Extracted: true}, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	m, content := readQueued(t, q, id)
	if strings.Contains(content, "Bcc") || strings.Contains(content, "other@b.org") {
		t.Errorf("Bcc kept:\n%s", content)
	}
	if strings.Count(content, "Message-I") != 1 || strings.Count(content, "\nDate:") != 1 || strings.Count(content, "\nFrom:") != 1 {
		t.Errorf("headers duplicated:\n%s", content)
	}
	if m.Attrs["rewrite_context"] != "local" || len(m.Recipients) != 2 {
		t.Errorf("envelope %+v", m)
	}
	if !strings.Contains(content, "(Postfix, from userid 1000)") {
		t.Errorf("no Received:\n%s", content)
	}
}

func TestNoHeaderBodySplit(t *testing.T) {
	c, q, _ := setup(t, "")
	id, err := c.Process(&Submission{Sender: "root", Recipients: []string{"root"}, UID: 0},
		strings.NewReader("Subject: x\nthis is not a header\nSecond: line\n\x00binary\xff"))
	if err != nil {
		t.Fatal(err)
	}
	_, content := readQueued(t, q, id)
	if !strings.Contains(content, "Subject: x\n") || !strings.HasSuffix(content, "From: root@example.ops\n\nthis is not a header\nSecond: line\n\x00binary\xff") {
		t.Errorf("content:\n%q", content)
	}
}

func TestLongLineIntact(t *testing.T) {
	c, q, _ := setup(t, "")
	long := strings.Repeat("x", 1<<20)
	id, err := c.Process(&Submission{Sender: "root", Recipients: []string{"root"}, UID: 0},
		strings.NewReader("Subject: "+long+"\n\n"+long+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, content := readQueued(t, q, id)
	if !strings.Contains(content, "Subject: "+long+"\n") || !strings.HasSuffix(content, "\n\n"+long+"\n") {
		t.Errorf("long lines not intact (len %d)", len(content))
	}
}

func emptyQueue(t *testing.T, q *queue.Queue) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(q.Dir, queue.Incoming))
	if len(ents) != 0 {
		t.Errorf("incoming not empty: %v", ents)
	}
}

func TestSizeLimit(t *testing.T) {
	c, q, _ := setup(t, "message_size_limit = 1000\n")
	_, err := c.Process(&Submission{Sender: "root", Recipients: []string{"root"}, UID: 0},
		strings.NewReader("Subject: big\n\n"+strings.Repeat("y", 5000)+"\n"))
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("err = %v", err)
	}
	emptyQueue(t, q)
}

func TestHopCount(t *testing.T) {
	c, q, _ := setup(t, "hopcount_limit = 3\n")
	msg := strings.Repeat("Received: from a by b\n", 3) + "\nx\n"
	_, err := c.Process(&Submission{Sender: "root", Recipients: []string{"root"}, UID: 0}, strings.NewReader(msg))
	if !errors.Is(err, ErrTooManyHops) {
		t.Fatalf("err = %v", err)
	}
	emptyQueue(t, q)
}

func TestCanonicalAndVirtual(t *testing.T) {
	c, q, _ := setup(t, "sender_canonical_maps = inline:{root=postmaster@example.ops}\n"+
		"canonical_maps = inline:{{old@example.ops = new@example.ops}}\n"+
		"virtual_alias_maps = inline:{ {info@example.ops = alice, bob}, {bob@example.ops = bob@example.ops, carol@other.org}, "+
		"{@virt.example = @example.ops}, {loop1@example.ops = loop2}, {loop2@example.ops = loop1} }\n")
	id, err := c.Process(&Submission{Sender: "root", Recipients: []string{"info", "old", "zed@virt.example", "alice", "loop1"}, UID: 0},
		strings.NewReader("From: root\nTo: old\n\nx\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, content := readQueued(t, q, id)
	if m.Sender != "postmaster@example.ops" {
		t.Errorf("sender %q", m.Sender)
	}
	want := "alice@example.ops bob@example.ops carol@other.org new@example.ops zed@example.ops loop1@example.ops"
	if got := strings.Join(rcpts(m), " "); got != want {
		t.Errorf("recipients\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(content, "From: postmaster@example.ops\n") || !strings.Contains(content, "To: new@example.ops\n") {
		t.Errorf("headers:\n%s", content)
	}
}

func TestNullSenderAndNoRecipients(t *testing.T) {
	c, q, _ := setup(t, "")
	if _, err := c.Process(&Submission{Sender: "root", UID: 0}, strings.NewReader("x\n")); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("no recipients: %v", err)
	}
	id, err := c.Process(&Submission{Sender: "", Recipients: []string{"root"}, UID: -1}, strings.NewReader("Subject: bounce\n\nx\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, content := readQueued(t, q, id)
	if m.Sender != "" || !strings.Contains(content, "From: MAILER-DAEMON\n") || strings.Contains(content, "Received:") {
		t.Errorf("null sender: %q\n%s", m.Sender, content)
	}
}

// TestVirtualTableUnavailable: a virtual_alias_maps table that cannot be
// opened keeps the message out of the queue with Postfix's warnings (the
// sender's copy stays in maildrop, to be tried again), never delivers it
// unaliased; once the table is built it is used without a restart.
func TestVirtualTableUnavailable(t *testing.T) {
	vdir := t.TempDir()
	virtual := filepath.Join(vdir, "virtual")
	c, q, logf := setup(t, "virtual_alias_maps = hash:"+virtual+"\n")
	submit := func() (string, error) {
		return c.Process(&Submission{Sender: "root", Recipients: []string{"info"}, UID: 0}, strings.NewReader("Subject: x\n\nx\n"))
	}
	_, err := submit()
	if err == nil || err.Error() != "virtual_alias_maps map lookup problem for info@example.ops -- message not accepted, try again later" {
		t.Fatalf("missing table: %v", err)
	}
	emptyQueue(t, q)
	log, _ := os.ReadFile(logf)
	for _, want := range []string{
		"postfix/cleanup[", "]: error: open database " + virtual + ".db: No such file or directory\n",
		"]: warning: hash:" + virtual + " is unavailable. open database " + virtual + ".db: No such file or directory\n",
		"]: warning: hash:" + virtual + " lookup error for \"info@example.ops\"\n",
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}

	os.WriteFile(virtual+".db", []byte("neither postdove's format nor Berkeley DB's, but long enough"), 0644)
	if _, err := submit(); err == nil {
		t.Fatal("unreadable table accepted")
	}
	log, _ = os.ReadFile(logf)
	if want := "warning: " + virtual + ".db cannot be read; run \"postmap " + virtual + "\" to rebuild it\n"; !strings.Contains(string(log), want) {
		t.Errorf("maillog lacks %q:\n%s", want, log)
	}

	var b maps.Builder
	b.Add([]byte("info@example.ops"), []byte("alice"))
	if err := b.WriteFile(virtual+".db", 0644, -1, -1); err != nil {
		t.Fatal(err)
	}
	id, err := submit()
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := readQueued(t, q, id); strings.Join(rcpts(m), " ") != "alice@example.ops" {
		t.Errorf("recipients %v", rcpts(m))
	}
}
