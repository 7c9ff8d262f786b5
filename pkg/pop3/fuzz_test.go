package pop3

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"

	"postdove/pkg/handoff"
)

// FuzzCommand feeds command lines to a session on the test Maildir: no
// panic, every reply starts with +OK or -ERR, and a bad message number is
// never taken for a message.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"STAT", "LIST", "LIST 1", "LIST x", "LIST 1 2", "UIDL 3", "RETR 01", "RETR 4294967297",
		"TOP 1", "TOP 1 0", "TOP 2 x", "TOP 1 99999999999999999999", "DELE 1", "RSET", "NOOP", "", " ", "CAPA", "retr 2",
		"RETR -1", "RETR 1x", "DELE 0", "TOP 3 1\x00"} {
		f.Add(s)
	}
	home := f.TempDir()
	makeMaildir(f, home)
	s := &session{info: &handoff.Info{User: "u", Home: home, Mail: "maildir:~/Maildir"}, noFlags: true}
	if err := s.open(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.EqualFold(strings.TrimSpace(line), "QUIT") || strings.HasPrefix(strings.ToUpper(line), "QUIT ") {
			return
		}
		var out bytes.Buffer
		s.w = &countWriter{Writer: bufio.NewWriter(&out)}
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		s.conn = c1
		for i := range s.deleted {
			s.deleted[i], s.seen[i] = false, false
		}
		if s.command(line) {
			t.Fatalf("%q ended the session", line)
		}
		s.w.Flush()
		reply := out.String()
		if !strings.HasPrefix(reply, "+OK") && !strings.HasPrefix(reply, "-ERR") {
			t.Fatalf("%q: reply %q", line, reply)
		}
		if !strings.HasSuffix(reply, "\r\n") {
			t.Fatalf("%q: reply %q does not end in CRLF", line, reply)
		}
	})
}

// FuzzWriteMessage: whatever the file holds, the body sent has CRLF line
// ends only and no line that is a lone ".".
func FuzzWriteMessage(f *testing.F) {
	f.Add([]byte("Subject: a\n\n.\n..x\r\nlast"), int64(-1))
	f.Add([]byte("no header end\n.\n"), int64(0))
	f.Add([]byte("H: 1\r\n\r\nb1\nb2\nb3\n"), int64(2))
	f.Fuzz(func(t *testing.T, msg []byte, lines int64) {
		var out bytes.Buffer
		if err := writeMessage(&out, bytes.NewReader(msg), lines); err != nil {
			t.Fatal(err)
		}
		b := out.Bytes()
		if len(b) == 0 {
			return
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Fatalf("%q: no CRLF at the end: %q", msg, b)
		}
		for _, l := range bytes.Split(b[:len(b)-2], []byte("\r\n")) {
			if bytes.ContainsAny(l, "\n") {
				t.Fatalf("%q: bare LF in %q", msg, b)
			}
			if string(l) == "." {
				t.Fatalf("%q: a lone dot in %q", msg, b)
			}
		}
	})
}

// FuzzExpand: the %-expansion of pop3_uidl_format and pop3_logout_format
// never panics and leaves text without '%' alone.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"%08Xu%08Xv", "top=%t/%p, retr=%r/%b", "%{uid}", "%", "%0", "%X", "%{", "%%", "%99999999999999999999u"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, format string) {
		got := expand(format, func(name string) (uint64, string, bool) { return 42, "", name == "u" || name == "uid" })
		if !strings.Contains(format, "%") && got != format {
			t.Fatalf("%q became %q", format, got)
		}
	})
}
