package postcat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/pkg/queue"
)

// queueFile writes one message with postdove's queue writer and returns
// its path.
func queueFile(t testing.TB, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, queue.Hold), 0o700); err != nil {
		t.Fatal(err)
	}
	q := queue.New(dir)
	m := &queue.Message{
		Arrival: time.Date(2026, 11, 27, 5, 7, 54, 0, time.Local),
		Sender:  "alice@example.com",
		Attrs:   map[string]string{"rewrite_context": "local", "full_name": "Alice A"},
		Recipients: []queue.Recipient{
			{Address: "bob@example.org", Orig: "bob@example.org"},
			{Address: "carol@example.org", Status: queue.Delivered, Notify: "SUCCESS,DELAY", ORCPT: "rfc822;Carol@example.org"},
		},
	}
	id, err := q.Enqueue(queue.Hold, m, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return q.Path(queue.Hold, id)
}

func printFile(t *testing.T, path string, opt Options) (string, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	err = Print(&out, f, "hold/X", opt)
	return out.String(), err
}

const testMessage = "Received: by x\n\tid X\nSubject: hi\nX-Folded: a\n b\n\nbody 1\nSubject: not a header\n"

func TestPrintSections(t *testing.T) {
	path := queueFile(t, testMessage)
	out, err := printFile(t, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `*** ENVELOPE RECORDS hold/X ***
message_size: ` + "%s" + `
message_arrival_time: Fri Nov 27 05:07:54 2026
named_attribute: rewrite_context=local
sender_fullname: Alice A
sender: alice@example.com
original_recipient: bob@example.org
recipient: bob@example.org
dsn_orig_rcpt: rfc822;Carol@example.org
dsn_notify_flags: 10
done_recipient: carol@example.org
*** MESSAGE CONTENTS hold/X ***
` + testMessage + `*** HEADER EXTRACTED hold/X ***
*** MESSAGE FILE END hold/X ***
`
	lines := strings.SplitN(out, "\n", 3)
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "message_size: ") {
		t.Fatalf("no message_size record:\n%s", out)
	}
	if w := strings.Replace(want, "%s", strings.TrimPrefix(lines[1], "message_size: "), 1); out != w {
		t.Errorf("got:\n%s\nwant:\n%s", out, w)
	}
	if out, _ := printFile(t, path, Options{Header: true}); out != "Received: by x\n\tid X\nSubject: hi\nX-Folded: a\n b\n" {
		t.Errorf("-h: %q", out)
	}
	if out, _ := printFile(t, path, Options{Body: true}); out != "\nbody 1\nSubject: not a header\n" {
		t.Errorf("-b: %q", out)
	}
	if out, _ := printFile(t, path, Options{Envelope: true}); strings.Contains(out, "Subject") || !strings.Contains(out, "*** MESSAGE FILE END hold/X ***") {
		t.Errorf("-e: %q", out)
	}
}

func TestPrintRecordsAndOffsets(t *testing.T) {
	long := strings.Repeat("y", 25)
	path := queueFile(t, "Subject: s\n\n"+long+"\n")
	out, err := printFile(t, path, Options{Body: true, Verbose: true, LineLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := "regular_text: \nunterminated_text: yyyyyyyyyy\nunterminated_text: yyyyyyyyyy\nregular_text: yyyyy\n"
	if out != want {
		t.Errorf("-bv: %q, want %q", out, want)
	}
	out, _ = printFile(t, path, Options{Header: true, Offsets: true})
	raw, _ := os.ReadFile(path)
	at := bytes.Index(raw, []byte("Subject: s\n"))
	if want := fmt.Sprintf("%9d Subject: s\n", at); out != want {
		t.Errorf("-ho: %q, want %q", out, want)
	}
	out, _ = printFile(t, path, Options{Envelope: true, Decimal: true})
	if !strings.Contains(out, " 83 sender: alice@example.com\n") || !strings.Contains(out, " 68 done_recipient: carol@example.org\n") {
		t.Errorf("-ed: %s", out)
	}
}

func TestMainErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("queue_directory = "+dir+"\n"), 0o644)
	notQueue := filepath.Join(dir, "hostname")
	os.WriteFile(notQueue, []byte("vm2\n"), 0o644)
	good := queueFile(t, testMessage)
	raw, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated")
	os.WriteFile(truncated, raw[:len(raw)-5], 0o644)
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-x"}, 1, "postcat: invalid option -- 'x'\npostcat: fatal: " + Usage + "\n"},
		{[]string{"/nonexistent"}, 1, "postcat: fatal: open /nonexistent: No such file or directory\n"},
		{[]string{"-q", "ABCDEF"}, 1, "postcat: fatal: open queue file ABCDEF: No such file or directory\n"},
		{[]string{"-q", "/etc/passwd"}, 1, "postcat: fatal: bad mail queue ID: /etc/passwd\n"},
		{[]string{notQueue}, 0, "postcat: warning: " + notQueue + ": input is not a valid queue file\n"},
		{[]string{truncated}, 1, "postcat: warning: " + truncated + ": file size"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := Main(append([]string{"-c", dir}, c.args...), os.Stdin, &out, &errb)
		if code != c.code || !strings.HasPrefix(errb.String(), c.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", c.args, code, errb.String(), c.code, c.stderr)
		}
		if c.args[0] == truncated && !strings.HasSuffix(errb.String(), "postcat: fatal: record read error\n") {
			t.Errorf("truncated: %q", errb.String())
		}
	}
}

// FuzzPrint feeds Print damaged queue files: it may report an error, never
// panic.
func FuzzPrint(f *testing.F) {
	raw, err := os.ReadFile(queueFile(f, testMessage))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte("postdove-queue 1\nend\n"))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "q")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, opt := range []Options{{}, {Verbose: true, Offsets: true, Decimal: true, LineLimit: 3}} {
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			Print(&bytes.Buffer{}, fh, "q", opt)
			fh.Close()
		}
	})
}
