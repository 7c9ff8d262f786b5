package cleanup

import (
	"bufio"
	"errors"
	"fmt"
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
func setup(t testing.TB, extra string) (*Cleanup, *queue.Queue, string) {
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

func readQueued(t testing.TB, q *queue.Queue, id string) (*queue.Message, string) {
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
	// The header is cut at header_size_limit; the body line stays whole.
	if !strings.Contains(content, "\nSubject: "+long[:102400-len("Subject: ")]+"\n") || !strings.HasSuffix(content, "\n\n"+long+"\n") {
		t.Errorf("long lines: header not cut or body not intact (len %d)", len(content))
	}
}

// TestHeaderSizeLimit checks what is kept of a header longer than
// header_size_limit against what Postfix 3.7's cleanup delivered for the
// same input (the cases were run through Debian's Postfix): a long first
// line is cut at the limit; continuation lines are kept while each fits
// whole, and none after the first that does not; the next header and the
// body are unaffected.
func TestHeaderSizeLimit(t *testing.T) {
	cont := func(s string, n int) string { return strings.Repeat(" "+s+"\n", n) }
	cases := []struct {
		name, big, want string // big: the X-Big header as sent; want: as kept
	}{
		{"200,000 continuation lines", "X-Big: start\n" + cont("cont", 200000), "X-Big: start\n" + cont("cont", 17064)},
		{"one long line", "X-Big: start " + strings.Repeat("y", 120000) + "\n", "X-Big: start " + strings.Repeat("y", 102400-13) + "\n"},
		{"1000-byte lines", "X-Big: start\n" + cont(strings.Repeat("c", 999), 200), "X-Big: start\n" + cont(strings.Repeat("c", 999), 102)},
		{"5000-byte lines", "X-Big: start\n" + cont(strings.Repeat("c", 4999), 30), "X-Big: start\n" + cont(strings.Repeat("c", 4999), 20)},
		{"no room after a full first line", "X-Big: " + strings.Repeat("y", 102393) + "\n z\n", "X-Big: " + strings.Repeat("y", 102393) + "\n"},
		{"nothing after a dropped line", "X-Big: " + strings.Repeat("y", 102380) + "\n " + strings.Repeat("z", 30) + "\n z\n",
			"X-Big: " + strings.Repeat("y", 102380) + "\n"},
		{"exactly the limit", "X-Big: start\n" + cont(strings.Repeat("c", 102386), 1), "X-Big: start\n" + cont(strings.Repeat("c", 102386), 1)},
	}
	for _, tc := range cases {
		hdrs, body, err := readHeaders(bufio.NewReaderSize(strings.NewReader("Subject: s\n"+tc.big+"X-After: after\n\nbody\n"), 64*1024), 0)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, h := range hdrs {
			names = append(names, h.name)
		}
		if strings.Join(names, " ") != "subject x-big x-after" || body != "" {
			t.Errorf("%s: headers %v, body start %q", tc.name, names, body)
			continue
		}
		if got := hdrs[1].raw; got != tc.want {
			t.Errorf("%s: kept %d bytes ending %q, want %d ending %q", tc.name, len(got), got[max(0, len(got)-20):], len(tc.want), tc.want[max(0, len(tc.want)-20):])
		}
	}
	// A smaller header_size_limit from main.cf applies, and a long line
	// that is not a header starts the body, whole.
	c, q, _ := setup(t, "header_size_limit = 20\n")
	long := strings.Repeat("b", 200000)
	id, err := c.Process(&Submission{Sender: "root", Recipients: []string{"root"}, UID: 0},
		strings.NewReader("Subject: 0123456789abcdefghij\n more\nX-Two: x\n"+long+"\nend\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, content := readQueued(t, q, id)
	if !strings.Contains(content, "\nSubject: 0123456789a\nX-Two: x\n") || !strings.HasSuffix(content, "\n\n"+long+"\nend\n") {
		t.Errorf("content:\n%.300q", content)
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

// TestHopCount: the Received: header cleanup prepends counts toward
// hopcount_limit, as in Postfix (49 Received: headers are too many for the
// default 50; compat's TestRuntimeHopcountMatchesPostfix checks it live).
func TestHopCount(t *testing.T) {
	for _, sub := range []*Submission{
		{Sender: "root", Recipients: []string{"root"}, UID: 0},
		{Sender: "a@b.org", Recipients: []string{"root"}, UID: -1, Received: "from x by y"},
	} {
		c, q, _ := setup(t, "hopcount_limit = 3\n")
		msg := strings.Repeat("Received: from a by b\n", 2) + "\nx\n"
		_, err := c.Process(sub, strings.NewReader(msg))
		if !errors.Is(err, ErrTooManyHops) {
			t.Fatalf("uid %d: err = %v", sub.UID, err)
		}
		emptyQueue(t, q)
		if _, err := c.Process(sub, strings.NewReader(msg[len("Received: from a by b\n"):])); err != nil {
			t.Fatalf("uid %d, one Received: err = %v", sub.UID, err)
		}
	}
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

// TestVirtualAliasLimits: virtual_alias_expansion_limit counts the
// addresses of each original recipient (not the whole envelope), and
// both limits defer the message with Postfix's words, naming the
// recipient as given.
func TestVirtualAliasLimits(t *testing.T) {
	list := func(prefix string, n int) string {
		var b []string
		for i := 0; i < n; i++ {
			b = append(b, fmt.Sprintf("%s%d@other.org", prefix, i))
		}
		return strings.Join(b, ", ")
	}
	var chain []string
	for i := 0; i < 1005; i++ {
		chain = append(chain, fmt.Sprintf("{c%d@example.ops = c%d@example.ops}", i, i+1))
	}
	c, q, _ := setup(t, "virtual_alias_maps = inline:{{l1@example.ops = "+list("a", 600)+"}, {l2@example.ops = "+list("b", 600)+"}, "+
		"{big@example.ops = "+list("c", 1001)+"}, "+strings.Join(chain, ",")+"}\n")
	var many []string
	for i := 0; i < 1500; i++ {
		many = append(many, fmt.Sprintf("u%d@other.org", i))
	}
	for _, rcpts := range [][]string{many, {"l1", "l2"}} {
		id, err := c.Process(&Submission{Sender: "root", Recipients: rcpts, UID: 0}, strings.NewReader("x\n"))
		if err != nil {
			t.Fatalf("%d recipients: %v", len(rcpts), err)
		}
		if m, _ := readQueued(t, q, id); len(m.Recipients) != 1200 && len(m.Recipients) != 1500 {
			t.Errorf("%d recipients queued", len(m.Recipients))
		}
	}
	for rcpt, want := range map[string]string{
		"big": "unreasonable virtual_alias_maps map expansion size for big@example.ops -- message not accepted, try again later",
		"c0":  "unreasonable virtual_alias_maps map nesting for c0@example.ops -- message not accepted, try again later",
	} {
		_, err := c.Process(&Submission{Sender: "root", Recipients: []string{"alice", rcpt}, UID: 0}, strings.NewReader("x\n"))
		var d *Defer
		if !errors.As(err, &d) || d.Text != want {
			t.Errorf("%s: err = %v, want %s", rcpt, err, want)
		}
	}
}

// BenchmarkProcessLongHeader runs a message whose header has 50,000,
// 100,000 and 200,000 continuation lines through cleanup: the time per
// message should grow at most linearly.
func BenchmarkProcessLongHeader(b *testing.B) {
	for _, n := range []int{50000, 100000, 200000} {
		msg := "Subject: big\nX-Big: start\n" + strings.Repeat(" cont\n", n) + "X-After: after\n\nbody\n"
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			c, _, _ := setup(b, "")
			b.SetBytes(int64(len(msg)))
			for i := 0; i < b.N; i++ {
				if _, err := c.Process(&Submission{Sender: "root", Recipients: []string{"root"}, UID: 0}, strings.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRewrittenHeaderLayout: a header whose addresses are rewritten is
// written in Postfix's layout (compat's TestRuntimeAddressHeadersMatch-
// Postfix compares it live); an unterminated comment does not carry the
// header's newline into a blank line that would end the header block.
func TestRewrittenHeaderLayout(t *testing.T) {
	c, q, _ := setup(t, "")
	id, err := c.Process(&Submission{Sender: "root", Recipients: []string{"root"}, UID: 0},
		strings.NewReader("To: alice,\n  bob\nCc: carol (open\nSubject: s\n\nbody\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, content := readQueued(t, q, id)
	head, _, _ := strings.Cut(content, "\n\n")
	if !strings.Contains(head, "\nTo: alice@example.ops, bob@example.ops\n") || !strings.Contains(head, "\nSubject: s\n") {
		t.Errorf("headers:\n%s", head)
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
