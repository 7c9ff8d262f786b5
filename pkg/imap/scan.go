package imap

import (
	"bytes"
	"strconv"
	"strings"
)

// maxScanLine is how much of a command line the scanner keeps: enough
// for the tag and the command name.
const maxScanLine = 256

// cmdScanner follows the client's byte stream to know the name of the
// last command sent ("UID FETCH"), for Dovecot's "Connection closed
// (UID FETCH finished 0.012 secs ago)". It skips literals, so message
// text given to APPEND is never taken for a command.
type cmdScanner struct {
	line      []byte // the start of the current line
	skip      int64  // literal bytes still to pass over
	continued bool   // the current line continues a command after a literal
	last      string
}

// Write feeds bytes read from the client.
func (c *cmdScanner) Write(p []byte) {
	for len(p) > 0 {
		if c.skip > 0 {
			n := int64(len(p))
			if n > c.skip {
				n = c.skip
			}
			c.skip -= n
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxScanLine - len(c.line); room > 0 {
			c.line = append(c.line, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			return
		}
		p = p[i+1:]
		c.endLine(c.line)
		c.line = c.line[:0]
	}
}

// endLine handles one complete line (without its LF, perhaps cut short).
func (c *cmdScanner) endLine(l []byte) {
	l = bytes.TrimSuffix(l, []byte("\r"))
	if !c.continued {
		if f := strings.Fields(string(l)); len(f) >= 2 {
			name := strings.ToUpper(f[1])
			if name == "UID" && len(f) >= 3 {
				name += " " + strings.ToUpper(f[2])
			}
			if validCommandName(name) {
				c.last = name
			}
		}
	}
	c.continued = false
	if n, ok := literalAtEnd(l); ok {
		c.skip, c.continued = n, true
	}
}

// validCommandName accepts IMAP atoms made of letters (and one space
// after UID).
func validCommandName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && r != ' ' && r != '-' {
			return false
		}
	}
	return true
}

// literalAtEnd parses a "{N}" or "{N+}" (or "~{N}") that ends a line.
func literalAtEnd(l []byte) (int64, bool) {
	if len(l) < 3 || l[len(l)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	num := strings.TrimSuffix(string(l[i+1:len(l)-1]), "+")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || num == "" || num[0] == '+' {
		return 0, false
	}
	return n, true
}
