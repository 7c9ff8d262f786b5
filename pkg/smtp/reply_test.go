package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	for _, c := range []struct {
		in   string
		code int
		dsn  string
		text string
	}{
		{"220 smtp-sink ESMTP\r\n", 220, "", "220 smtp-sink ESMTP"},
		{"250-smtp-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 250, "", "250-smtp-sink 250-PIPELINING 250 8BITMIME"},
		{"550 5.1.1 <x@y>: Recipient address rejected\r\n", 550, "5.1.1", "550 5.1.1 <x@y>: Recipient address rejected"},
		{"451 4.3.0 Error\n", 451, "4.3.0", "451 4.3.0 Error"},
		{"550 4.1.1 class mismatch\r\n", 550, "", "550 4.1.1 class mismatch"},
		{"354\r\n", 354, "", "354"},
		{"250 ok\x1b[31m\r\n", 250, "", "250 ok [31m"},
	} {
		rep, err := ReadReply(bufio.NewReader(strings.NewReader(c.in)))
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if rep.Code != c.code || rep.DSN != c.dsn || rep.Text() != c.text {
			t.Errorf("%q: got %d %q %q, want %d %q %q", c.in, rep.Code, rep.DSN, rep.Text(), c.code, c.dsn, c.text)
		}
	}
}

func TestReadReplyMalformed(t *testing.T) {
	for _, in := range []string{"hello\r\n", "25 x\r\n", "250-a\r\n251 b\r\n", "250xyz\r\n", "2a0 x\r\n"} {
		_, err := ReadReply(bufio.NewReader(strings.NewReader(in)))
		if !errors.Is(err, errBadReply) {
			t.Errorf("%q: err = %v, want malformed", in, err)
		}
	}
	// A reply cut short is a lost connection, not a reply.
	if _, err := ReadReply(bufio.NewReader(strings.NewReader("250-a\r\n250 b"))); err == nil {
		t.Error("truncated reply accepted")
	}
}

func TestReadReplyLongLine(t *testing.T) {
	in := "250 " + strings.Repeat("x", 100000) + "\r\n250 next\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	rep, err := ReadReply(r)
	if err != nil || len(rep.Lines[0]) != maxReplyLine-4 {
		t.Fatalf("long line: %v, %d bytes", err, len(rep.Lines[0]))
	}
	if rep, err := ReadReply(r); err != nil || rep.Text() != "250 next" {
		t.Fatalf("after a long line: %q %v", rep.Text(), err)
	}
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte("250-smtp-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n"))
	f.Add([]byte("550 5.1.1 <x@y>: no\r\n"))
	f.Add([]byte("451-4.3.0 a\n451 b\r\n"))
	f.Add([]byte("220\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		for i := 0; i < 10; i++ {
			rep, err := ReadReply(r)
			if err != nil {
				return
			}
			if rep.Code < 0 || rep.Code > 999 || len(rep.Lines) == 0 {
				t.Fatalf("bad reply %+v", rep)
			}
			if txt := rep.Text(); strings.ContainsAny(txt, "\r\n") {
				t.Fatalf("line end in reply text %q", txt)
			}
			if rep.DSN != "" && rep.DSN[0] != byte('0'+rep.Code/100) {
				t.Fatalf("DSN %q for code %d", rep.DSN, rep.Code)
			}
		}
	})
}
