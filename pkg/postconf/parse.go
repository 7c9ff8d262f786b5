package postconf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"postdove/pkg/maillog"
)

// logicalLine is one entry of a Postfix configuration file: a line plus
// its continuation lines (lines that start with white space), with comment
// lines and blank lines removed.
type logicalLine struct {
	Text string // joined text, trailing white space removed
	Line int    // line number of the first physical line
	Last int    // line number of the last physical line
}

const spaceChars = " \t\r\n\v\f"

func isSpace(c byte) bool { return strings.IndexByte(spaceChars, c) >= 0 }

// isFiller reports whether a physical line is blank or a comment.
func isFiller(line string) bool {
	t := strings.TrimLeft(line, spaceChars)
	return t == "" || t[0] == '#'
}

// readLogicalLines splits a configuration file into logical lines. Lines
// that continue nothing (white space at the start of the file) form a
// logical line of their own, which is reported through warn in Postfix's
// wording, raw text made printable, and skipped. As in Postfix, whose
// parser sees C strings, a logical line ends at its first NUL byte: the
// rest of it, continuation lines included, is ignored.
func readLogicalLines(r io.Reader, path string, warn func(string)) ([]logicalLine, error) {
	br := bufio.NewReader(r)
	var out []logicalLine
	var text strings.Builder  // text of the logical line being read
	var stray strings.Builder // raw text of a logical line with no start
	inStray := false
	endStray := func() {
		if inStray && warn != nil {
			warn(fmt.Sprintf("%s: logical line must not start with whitespace: \"%s\"", path, maillog.Sanitize(cutNUL(stray.String()), false)))
		}
		inStray = false
		stray.Reset()
	}
	endLine := func() {
		if len(out) > 0 && text.Len() > 0 {
			out[len(out)-1].Text = strings.TrimRight(cutNUL(text.String()), spaceChars)
			text.Reset()
		}
	}
	n := 0
	for {
		raw, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if raw == "" && err != nil {
			break
		}
		n++
		raw = strings.TrimSuffix(raw, "\n")
		line := strings.TrimRight(raw, spaceChars)
		switch {
		case isFiller(line):
		case isSpace(line[0]):
			if len(out) == 0 || inStray {
				inStray = true
				stray.WriteString(raw)
				break
			}
			text.WriteString(line)
			out[len(out)-1].Last = n
		default:
			endStray()
			endLine()
			out = append(out, logicalLine{Line: n, Last: n})
			text.WriteString(line)
		}
		if err != nil {
			break
		}
	}
	endStray()
	endLine()
	return out, nil
}

// cutNUL returns s up to its first NUL byte.
func cutNUL(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// splitNameValue splits "name = value" as Postfix does: the name runs to
// white space or '=', and must be followed by '='.
func splitNameValue(s string) (name, value string, err error) {
	t := strings.TrimLeft(s, spaceChars)
	i := 0
	for i < len(t) && t[i] != '=' && !isSpace(t[i]) {
		i++
	}
	name = t[:i]
	rest := strings.TrimLeft(t[i:], spaceChars)
	if name == "" {
		return "", "", fmt.Errorf("missing attribute name: \"%s\"", s)
	}
	if rest == "" || rest[0] != '=' {
		return "", "", fmt.Errorf("missing '=' after attribute name: \"%s\"", s)
	}
	return name, strings.Trim(rest[1:], spaceChars), nil
}
