package smtpd

import (
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzParsePath: MAIL FROM:/RCPT TO: arguments never panic, and an
// accepted address holds no angle brackets or line breaks.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"FROM:<a@b>", "FROM:<>", "from: <a@b> SIZE=10 BODY=8BITMIME", "TO:<\"a>b\"@c>",
		"TO:<@a,@b:c@d>", "TO:a@b", "TO:<a@b", "FROM:", "TO:<\"\\\">@x>", "FROM:<a\x00b@c>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		for _, kw := range []string{"FROM:", "TO:"} {
			a, _, ok := parsePath(arg, kw)
			if ok && strings.ContainsAny(a, "<>\r\n\x00") {
				t.Errorf("%q: address %q", arg, a)
			}
			_ = stripRoute(a)
		}
	})
}

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -].*\r$`)

// FuzzSession feeds any client input to a real session: it never panics
// and every line it sends back is an SMTP reply.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<root@mail.example.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
		"HELO x\r\nMAIL FROM:<a@b.example> SIZE=99999999999999999999\r\nRCPT TO:<>\r\nBDAT x\r\nBDAT 3 LAST\r\nabc",
		"EHLO\r\nHELO\r\nVRFY\r\nETRN\r\nRSET x\r\nDATA x\r\n\x00\xff\r\n.\r\n",
		"MAIL FROM:<a@b.example>\r\nRCPT TO:<root>\r\nBDAT 5\r\nab\r\nxBDAT 0 LAST\r\n",
		"GET / HTTP/1.0\r\n", "Subject: x\r\n", strings.Repeat("x", 10000) + "\r\n",
	} {
		f.Add(s)
	}
	ts := start(f, "smtpd_timeout = 5s\nsmtpd_hard_error_limit = 1000\n")
	f.Fuzz(func(t *testing.T, input string) {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			io.WriteString(c, input)
			c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(out), "\n")
		if lines[len(lines)-1] != "" {
			t.Fatalf("unterminated reply %q", lines[len(lines)-1])
		}
		for _, l := range lines[:len(lines)-1] {
			if !replyLine.MatchString(l) {
				t.Fatalf("input %q: bad reply line %q", input, l)
			}
		}
	})
}

// FuzzXtext: ENVID and ORCPT values never panic the decoder, and what it
// accepts has no "+" escapes left undecoded.
func FuzzXtext(f *testing.F) {
	for _, s := range []string{"abc+2Bd", "a+", "a+2", "a+zz", "a+2b", "rfc822;x+40y", "", "a=b", "\x00", "+41+42"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := xtextDecode(s); ok && len(d) > len(s) {
			t.Errorf("%q decodes to the longer %q", s, d)
		}
		_ = validNotify(s)
	})
}

// FuzzRcodeStream: the response code watched on a resolver's TCP stream
// is the first message's (after its two-byte length) however the reads
// split it, and no input panics.
func FuzzRcodeStream(f *testing.F) {
	f.Add([]byte("\x00\x1d\x12\x34\x81\x83rest"), uint8(1))
	f.Add([]byte("\x00\x1d\x12\x34\x85\x80"), uint8(3))
	f.Add([]byte("\x00"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			b.Write(data)
			b.Close()
		}()
		var w rcodeWatch
		c := &rcodeConn{Conn: a, w: &w}
		buf := make([]byte, int(step%7)+1)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		want := -1
		if len(data) >= 6 {
			want = int(data[5] & 0x0f)
		}
		if got := w.code(); got != want {
			t.Errorf("%q in reads of %d: rcode %d, want %d", data, len(buf), got, want)
		}
	})
}
