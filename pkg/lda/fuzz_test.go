package lda

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzMessage feeds arbitrary input to the stdin reader: the message read
// back is the input less a leading "From " line, and the Message-ID for
// the log is one line of printable text.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{
		"",
		"From a@b  Fri Nov 27 05:00:00 2026\nSubject: x\n\nbody\n",
		"Message-ID: <a@b>\r\n\r\nbody\r\n",
		"Message-ID:\n <folded@b>\n\nx",
		"Message-ID: <\x00\x01>\n\n",
		"no header at all",
		"From \n",
		"Subject: a\n" + strings.Repeat("X-Long: "+strings.Repeat("y", 1000)+"\n", 80) + "Message-ID: <late@b>\n\nbody",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m := newMessage(bytes.NewReader(in))
		id := m.ID()
		if id == "" || strings.ContainsAny(id, "\r\n\x00") || len(id) > 200 {
			t.Fatalf("ID() = %q", id)
		}
		got, err := io.ReadAll(m.Reader())
		if err != nil {
			t.Fatal(err)
		}
		want := in
		if bytes.HasPrefix(in, []byte("From ")) {
			if i := bytes.IndexByte(in, '\n'); i >= 0 {
				want = in[i+1:]
			} else {
				want = nil
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read back %q, want %q", got, want)
		}
	})
}

// FuzzArgs: any command line (NUL-separated words) parses without a
// panic, and a complaint comes only with a failed parse.
func FuzzArgs(f *testing.F) {
	for _, s := range []string{"-f\x00a@b\x00-a\x00c@d", "-d", "-ek", "-oname=value\x00-m\x00Box", "-z", "--\x00x", "-", "-fa@b-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, complaint, ok := parseArgs("dovecot-lda", strings.Split(s, "\x00"))
		if ok && complaint != "" {
			t.Fatalf("ok with complaint %q", complaint)
		}
		if !ok && o.Overrides != nil && len(o.Overrides) > len(s) {
			t.Fatal("more overrides than input")
		}
	})
}
