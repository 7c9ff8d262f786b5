package cleanup

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"postdove/pkg/queue"
)

// FuzzReadHeaders reads a header block with a small header_size_limit and
// a small read buffer, so that long lines and cuts are exercised.
// Properties: no panic; every header ends in one newline, has a valid
// name and keeps at most limit bytes; with a limit larger than the input,
// the headers are the input's first bytes unchanged.
func FuzzReadHeaders(f *testing.F) {
	f.Add("Subject: hi\nTo: a,\n  b\n\nbody\n", uint16(100))
	f.Add("X-Big: start\n cont\n cont\n cont\nX-After: y\n\n", uint16(12))
	f.Add("Subject: "+strings.Repeat("x", 70)+"\n more\nnot a header\n", uint16(30))
	f.Add("From me\n\r\nbody", uint16(0))
	f.Add(" leading\nA:\n\tb\nB : c", uint16(1))
	f.Fuzz(func(t *testing.T, in string, lim uint16) {
		limit := int(lim)
		if limit == 0 {
			limit = len(in) + 1
		}
		br := bufio.NewReaderSize(strings.NewReader(in), 16)
		hdrs, bodyStart, err := readHeaders(br, limit)
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		for _, h := range hdrs {
			if !strings.HasSuffix(h.raw, "\n") || len(h.raw)-1 > limit {
				t.Fatalf("header %q: limit %d", h.raw, limit)
			}
			// A header cut at a limit shorter than its name has none.
			if n := HeaderName([]byte(h.raw)); (n == "" || strings.ToLower(n) != h.name) && len(h.raw)-1 < limit {
				t.Fatalf("header %q: name %q", h.raw, h.name)
			}
			all.WriteString(h.raw)
		}
		rest, _ := io.ReadAll(br)
		if limit > len(in) {
			got := all.String()
			if !strings.HasPrefix(in, got) && in+"\n" != got {
				t.Fatalf("headers %q are not the start of %q", got, in)
			}
			if body := bodyStart + string(rest); bodyStart != "" && !strings.HasSuffix(in, body) && !strings.HasSuffix(in+"\n", body) {
				t.Fatalf("body %q + %q not in %q", bodyStart, rest, in)
			}
		}
	})
}

// FuzzProcess runs a fuzzed message, submitted locally (so that address
// headers are rewritten), through cleanup with small limits. Properties:
// no panic; the message is queued or refused with a *Reject; the queued
// header block has no blank line and keeps the body that follows it.
func FuzzProcess(f *testing.F) {
	f.Add("From: me\nTo: alice, Bob <bob>\nCc: team: x, y;\n\nbody\n")
	f.Add("Received: a\nReceived: b\nReceived: c\n\nx")
	f.Add("To: (open\nSubject: s\n\nbody\n")
	f.Add("Subject: " + strings.Repeat("x", 300) + "\n " + strings.Repeat("y", 50) + "\nTo: " + strings.Repeat("a, ", 40) + "\n\n")
	c, q, _ := setup(f, "header_size_limit = 200\nheader_address_token_limit = 30\nhopcount_limit = 3\n"+
		"virtual_alias_maps = inline:{{alice@example.ops = alice, carol}}\n")
	f.Fuzz(func(t *testing.T, msg string) {
		id, err := c.Process(&Submission{Sender: "root", Recipients: []string{"alice"}, UID: 0}, strings.NewReader(msg+"\n\nEND-OF-BODY\n"))
		var rej *Reject
		if errors.As(err, &rej) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		_, content := readQueued(t, q, id)
		q.Remove(queue.Incoming, id)
		head, body, _ := strings.Cut(content, "\n\n")
		if !strings.HasPrefix(head, "Received: ") || !strings.Contains(strings.ToLower(head), "\nmessage-id:") || !strings.HasSuffix(body, "END-OF-BODY\n") {
			t.Fatalf("%q queued as\n%q", msg, content)
		}
	})
}
