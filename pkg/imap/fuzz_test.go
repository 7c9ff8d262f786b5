package imap

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"postdove/pkg/maildir"
)

// FuzzCheckName: whatever a client names, the folder stays a direct
// child of the Maildir root named "."+something, never "..".
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"INBOX", "inbox.x", "../x", "a/b", "~x", "a..b", ".x", "x.", "a%b", "a*b", "a.~b", "&AOQ-", "a\x00b", "Sent Messages", strings.Repeat("x", 300)} {
		f.Add(s, byte('.'))
		f.Add(s, byte('/'))
	}
	root := "/maildir-root"
	st := maildir.OpenStore(root, maildir.Options{UID: -1, GID: -1})
	f.Fuzz(func(t *testing.T, name string, sep byte) {
		if sep != '.' && sep != '/' {
			return
		}
		sn, err := CheckName(name, sep)
		if err != nil {
			return
		}
		dir := st.Dir(sn)
		if sn == "INBOX" {
			if dir != root {
				t.Fatalf("%q: INBOX at %s", name, dir)
			}
			return
		}
		base := filepath.Base(dir)
		if filepath.Dir(dir) != root || !strings.HasPrefix(base, ".") || base == "." || base == ".." || strings.HasPrefix(base, "..") {
			t.Fatalf("%q (sep %q) -> %q -> %s", name, sep, sn, dir)
		}
		ns := namespace{sep: sep}
		if got := ns.clientName(sn); !strings.EqualFold(got, name) {
			t.Fatalf("%q -> %q -> %q", name, sn, got)
		}
	})
}

// FuzzToCRLF: the output has no bare LF and is the input with a CR put
// before each bare LF.
func FuzzToCRLF(f *testing.F) {
	for _, s := range []string{"", "a\n", "a\r\n", "\r", "\r\r\n\n", "x\ny\r\nz", strings.Repeat("a", 70000) + "\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := toCRLF(&out, bytes.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		b := out.Bytes()
		for i := range b {
			if b[i] == '\n' && (i == 0 || b[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, b)
			}
		}
		want := bytes.ReplaceAll(bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		if !bytes.Equal(b, want) {
			t.Fatalf("%q -> %q, want %q", in, b, want)
		}
	})
}

// FuzzSearchMatch runs the search matcher over any message content: it
// must not panic, and a message matches NOT x exactly when it does not
// match x.
func FuzzSearchMatch(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: hi\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n\r\nbody\r\n"), "hi")
	f.Add([]byte("Subject: =?utf-8?q?x?=\r\n\r\n"), "x")
	f.Add([]byte("no header at all"), "")
	f.Add([]byte("\r\n\r\n"), "\x00")
	f.Fuzz(func(t *testing.T, content []byte, word string) {
		kw := maildir.Keywords{}
		msg := &maildir.Message{UID: 1, Info: "S", VSize: int64(len(content)), Date: time.Unix(1795766400, 0)}
		criteria := []imap.SearchCriteria{
			{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: word}}},
			{Body: []string{word}},
			{Text: []string{word}},
			{SentSince: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
			{SentBefore: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
			{Flag: []imap.Flag{imap.Flag(word)}},
		}
		for i := range criteria {
			c := candidate{seq: 1, maxSeq: 1, maxUID: 1, msg: msg, kw: &kw, load: func() []byte { return content }}
			yes := c.match(&criteria[i])
			if no := c.match(&imap.SearchCriteria{Not: []imap.SearchCriteria{criteria[i]}}); yes == no {
				t.Fatalf("criterion %d: match %v and NOT match %v", i, yes, no)
			}
		}
	})
}

// FuzzCmdScanner: the scanner's answer does not depend on how the stream
// is cut into reads, and a literal's bytes are never taken for a command.
func FuzzCmdScanner(f *testing.F) {
	f.Add([]byte("a1 NOOP\r\na2 UID FETCH 1:* (FLAGS)\r\n"), 3)
	f.Add([]byte("a APPEND INBOX {5}\r\nb X\r\n\r\n"), 1)
	f.Add([]byte("a LOGIN {3+}\r\nbob {2}\r\npw\r\nDONE\r\n"), 7)
	f.Add([]byte("x {99999999999999999999}\r\n"), 2)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		var whole, parts cmdScanner
		whole.Write(in)
		if cut < 0 {
			cut = -cut
		}
		if cut > len(in) {
			cut = len(in)
		}
		parts.Write(in[:cut])
		for _, b := range in[cut:] {
			parts.Write([]byte{b})
		}
		if whole.last != parts.last || whole.skip != parts.skip {
			t.Fatalf("%q: whole %q/%d, in parts %q/%d", in, whole.last, whole.skip, parts.last, parts.skip)
		}
		var app cmdScanner
		app.Write([]byte("t1 APPEND INBOX {" + strconv.Itoa(len(in)) + "}\r\n"))
		app.Write(in)
		app.Write([]byte("\r\n"))
		if app.last != "APPEND" || app.skip != 0 {
			t.Fatalf("literal %q: last %q skip %d", in, app.last, app.skip)
		}
	})
}
