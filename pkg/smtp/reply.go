package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
)

// Reply is one SMTP server reply (RFC 5321 section 4.2), possibly of
// several lines.
type Reply struct {
	Code  int      // 250, 451, 550 ...
	DSN   string   // the enhanced status code of the first line (RFC 3463), "" when none
	Lines []string // the text after "NNN " / "NNN-" of each line
}

// Maximum sizes of what a server may send us.
const (
	maxReplyLine  = 4096 // longer lines are cut (RFC 5321 says 512)
	maxReplyLines = 1000
)

// errBadReply is a reply line that is not "NNN[ -]text".
var errBadReply = errors.New("malformed server reply")

// ReadReply reads one reply from r. A line longer than maxReplyLine is
// truncated; a line that does not start with a three-digit code, or a
// continuation with another code, is errBadReply.
func ReadReply(r *bufio.Reader) (Reply, error) {
	var rep Reply
	for {
		line, err := readLine(r)
		if err != nil {
			return rep, err
		}
		if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) ||
			(len(line) > 3 && line[3] != ' ' && line[3] != '-') {
			return rep, fmt.Errorf("%w: %q", errBadReply, truncate(line, 80))
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if rep.Lines != nil && code != rep.Code {
			return rep, fmt.Errorf("%w: %q", errBadReply, truncate(line, 80))
		}
		rep.Code = code
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		if len(rep.Lines) < maxReplyLines {
			rep.Lines = append(rep.Lines, text)
		}
		if len(line) == 3 || line[3] == ' ' {
			break
		}
	}
	rep.DSN = enhancedCode(rep.Code, rep.Lines[0])
	return rep, nil
}

// readLine reads one line without its CRLF (or bare LF), cutting it at
// maxReplyLine bytes.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(b) < maxReplyLine {
			n := min(len(chunk), maxReplyLine-len(b))
			b = append(b, chunk[:n]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	s := strings.TrimRight(string(b), "\r\n")
	return s, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// enhancedCode is the "X.Y.Z" at the start of text when it is a valid
// enhanced status code whose class matches code's first digit.
func enhancedCode(code int, text string) string {
	f := strings.SplitN(text, " ", 2)[0]
	parts := strings.Split(f, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] != byte('0'+code/100) {
		return ""
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 {
			return ""
		}
		for i := 0; i < len(p); i++ {
			if !isDigit(p[i]) {
				return ""
			}
		}
	}
	return f
}

// Text is the reply as Postfix quotes it in a DSN and the log: every
// line with its code, joined by spaces ("550-5.7.1 first 550 5.7.1 last").
func (r Reply) Text() string {
	var b strings.Builder
	for i, l := range r.Lines {
		if i > 0 {
			b.WriteByte(' ')
		}
		sep := byte(' ')
		if i < len(r.Lines)-1 {
			sep = '-'
		}
		fmt.Fprintf(&b, "%d", r.Code)
		if l != "" || sep == '-' {
			b.WriteByte(sep)
			b.WriteString(l)
		}
	}
	if len(r.Lines) == 0 {
		fmt.Fprintf(&b, "%d", r.Code)
	}
	return printable(b.String())
}

// Status is the DSN status of the reply: its enhanced code, or X.0.0 of
// its class when it has none.
func (r Reply) Status() string {
	if r.DSN != "" {
		return r.DSN
	}
	return fmt.Sprintf("%d.0.0", r.Code/100)
}

// Class is the reply's first digit: 2, 3, 4 or 5.
func (r Reply) Class() int { return r.Code / 100 }

// printable replaces control characters, which must not reach the log or
// a DSN, with spaces.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
