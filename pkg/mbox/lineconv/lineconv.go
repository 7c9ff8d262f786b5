// Package lineconv copies a message from network form (CRLF line ends) to
// the Unix form that mbox(5) mailboxes and Maildir files hold (LF line
// ends), as Postfix's local(8) and Dovecot's LDA store messages. It can
// also apply mbox's ">From " quoting. It is shared by postdove's mbox and
// maildir packages.
package lineconv

import (
	"bufio"
	"bytes"
	"io"
)

// Options choose the conversions beyond CRLF to LF.
type Options struct {
	// QuoteFrom prefixes ">" to every line that begins with "From ".
	QuoteFrom bool
	// EnsureNewline ends a last line that lacks one with "\n".
	EnsureNewline bool
}

// Stats describe what was written.
type Stats struct {
	Bytes  int64 // bytes written
	BareLF int64 // LF bytes not preceded by CR: Bytes+BareLF is the CRLF size
}

var from = []byte("From ")

// Copy reads r to its end and writes the converted text to w. Lines of any
// length are handled in bounded memory.
func Copy(w io.Writer, r io.Reader, opts Options) (Stats, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	cw := &countWriter{w: w}
	atStart := true    // the next byte begins a line
	pendingCR := false // a CR ended the last chunk; an LF may follow
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if pendingCR {
				pendingCR = false
				if chunk[0] != '\n' {
					cw.write([]byte{'\r'})
				}
			}
			if atStart && opts.QuoteFrom && bytes.HasPrefix(chunk, from) {
				cw.write([]byte{'>'})
			}
			if chunk[len(chunk)-1] == '\n' {
				line := chunk[:len(chunk)-1]
				if len(line) > 0 && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
				cw.write(line)
				cw.write([]byte{'\n'})
				atStart = true
			} else {
				if chunk[len(chunk)-1] == '\r' {
					pendingCR = true
					chunk = chunk[:len(chunk)-1]
				}
				cw.write(chunk)
				atStart = false
			}
		}
		if cw.err != nil {
			return cw.st, cw.err
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return cw.st, err
		}
	}
	if pendingCR {
		cw.write([]byte{'\r'})
	}
	if !atStart && opts.EnsureNewline {
		cw.write([]byte{'\n'})
	}
	return cw.st, cw.err
}

// countWriter keeps the first write error and counts bytes and bare LFs.
type countWriter struct {
	w      io.Writer
	st     Stats
	lastCR bool
	err    error
}

func (c *countWriter) write(b []byte) {
	if c.err != nil || len(b) == 0 {
		return
	}
	n, err := c.w.Write(b)
	c.err = err
	for i, ch := range b[:n] {
		if ch == '\n' {
			prevCR := c.lastCR
			if i > 0 {
				prevCR = b[i-1] == '\r'
			}
			if !prevCR {
				c.st.BareLF++
			}
		}
	}
	if n > 0 {
		c.lastCR = b[n-1] == '\r'
	}
	c.st.Bytes += int64(n)
}
