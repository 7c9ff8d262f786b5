package queue

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fileBytes is a complete queue file for m with content body, as Commit
// writes it.
func fileBytes(t testing.TB, m *Message, body string) []byte {
	env, off, err := encodeEnvelope(m)
	if err != nil {
		t.Fatal(err)
	}
	rs := NewRecordSize(0)
	rs.Write([]byte(body))
	nums := []byte(strings.Join([]string{pad(int64(len(env))), pad(int64(len(body))), pad(rs.Size())}, " "))
	copy(env[off:], nums)
	return append(env, body...)
}

func pad(n int64) string { return fmt.Sprintf("%0*d", numWidth, n) }

// oldFile is a file as written before the message size was recorded: two
// numbers on the content line.
func oldFile(body string) []byte {
	head := magic + "\narrival 1795299959 0\ncontent "
	rest := "\nsender \"a@b\"\nrcpt - \"x@y\" \"\"\nend\n"
	off := int64(len(head) + 2*numWidth + 1 + len(rest))
	return []byte(head + pad(off) + " " + pad(int64(len(body))) + rest + body)
}

func TestReadOldFile(t *testing.T) {
	data := oldFile("hi\n")
	m, err := parseEnvelope(bytes.NewReader(data), int64(len(data)), "old")
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != 3 || m.MessageSize != 3 || m.Sender != "a@b" || len(m.Recipients) != 1 {
		t.Errorf("read %+v", m)
	}
}

// FuzzRead feeds arbitrary bytes to the queue file reader: it must never
// panic, and what it accepts must be a consistent message that survives
// being written again.
func FuzzRead(f *testing.F) {
	m := &Message{
		Sender: "alice@example.com", Arrival: time.Unix(1795299959, 515175000),
		Attrs: map[string]string{AttrMessageID: "<x@example.com>", AttrRewriteContext: "local"},
		Recipients: []Recipient{
			{Address: "bob@example.org", Status: Pending},
			{Address: "carol@example.org", Orig: "carol", Status: TempFail},
			{Address: "\"odd \\\"q\\\"\"@x\x00\xff", Status: Delivered},
			{Address: "dave@example.org", Status: Pending, Notify: "NEVER", ORCPT: "rfc822;Dave@example.org"},
		},
	}
	good := fileBytes(f, m, "Subject: hi\n\nbody\n")
	f.Add(good)
	f.Add(fileBytes(f, &Message{Sender: "", Arrival: time.Unix(1, 0), Recipients: []Recipient{{Address: "postmaster", Status: Bounced}}}, ""))
	// A file from before the message size was recorded: two numbers.
	f.Add(oldFile("hi"))
	f.Add(good[:len(good)-3])
	f.Add(good[:40])
	f.Add([]byte{})
	f.Add([]byte(magic + "\n"))
	f.Add(bytes.Replace(good, []byte("rcpt -"), []byte("rcpt ?"), 1))
	f.Add(bytes.Replace(good, []byte("arrival "), []byte("arrival -"), 1))
	f.Add(bytes.Replace(good, []byte("end\n"), []byte("arrival 1 2\nend\n"), 1))
	f.Add([]byte(magic + "\ncontent 1 2 3\nrcpt D\nend\n"))
	f.Add(bytes.Replace(good, []byte(`"NEVER" `), nil, 1)) // three fields
	f.Add(bytes.Replace(good, []byte(`"rfc822;Dave@example.org"`), []byte(`"x" "y"`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseEnvelope(bytes.NewReader(data), int64(len(data)), "/q/active/F00")
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "/q/active/F00") {
				t.Fatalf("error %v is not a CorruptError naming the file", err)
			}
			return
		}
		if m.Offset < 0 || m.Size < 0 || m.Offset+m.Size != int64(len(data)) {
			t.Fatalf("content %d+%d outside a file of %d bytes", m.Offset, m.Size, len(data))
		}
		if len(m.Recipients) == 0 || m.Arrival.IsZero() {
			t.Fatalf("accepted a message without recipients or arrival: %+v", m)
		}
		for i, r := range m.Recipients {
			if !r.Status.valid() || r.offset < 0 || r.offset >= m.Offset || Status(data[r.offset]) != r.Status {
				t.Fatalf("recipient %d: status %q at offset %d does not match the file", i, r.Status, r.offset)
			}
		}
		// Written again, it reads back the same.
		again := fileBytes(t, m, string(data[m.Offset:]))
		m2, err := parseEnvelope(bytes.NewReader(again), int64(len(again)), "again")
		if err != nil {
			t.Fatalf("rewritten file unreadable: %v\n%q", err, again)
		}
		for i := range m.Recipients {
			m.Recipients[i].offset, m2.Recipients[i].offset = 0, 0
		}
		if m.Sender != m2.Sender || !m.Arrival.Equal(m2.Arrival) || m.Size != m2.Size ||
			!reflect.DeepEqual(m.Recipients, m2.Recipients) || !reflect.DeepEqual(m.Attrs, m2.Attrs) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
	})
}

// FuzzReadLog feeds arbitrary bytes to the logfile reader: it never
// panics, and an entry it reads, written again, reads back the same.
func FuzzReadLog(f *testing.F) {
	f.Add([]byte("recipient=bob@x\norig_rcpt=bob\nstatus=5.1.1\naction=failed\nreason=unknown user: \"bob\"\n\n"))
	f.Add([]byte("recipient=a\nnotify_sender=owner-l@x\nstatus=4.2.0\n\nrecipient=b\r\nreason=x=y\n"))
	f.Add([]byte("no equals sign\n\n\n=\nstatus="))
	f.Add([]byte("reason=" + strings.Repeat("x", 70000) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseLog(bytes.NewReader(data))
		if err != nil {
			return
		}
		var text strings.Builder
		for _, e := range entries {
			text.WriteString(formatLog(e))
		}
		again, err := parseLog(strings.NewReader(text.String()))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("rewritten: %d entries, %v; want %d", len(again), err, len(entries))
		}
		for i, e := range entries {
			want := LogEntry{Recipient: cleanLogValue(e.Recipient), Orig: cleanLogValue(e.Orig), Status: cleanLogValue(e.Status),
				Action: cleanLogValue(e.Action), Reason: cleanLogValue(e.Reason), NotifySender: cleanLogValue(e.NotifySender)}
			if again[i] != want {
				t.Fatalf("entry %d: %+v, want %+v", i, again[i], want)
			}
		}
	})
}
