package smtp

import (
	"bufio"
	"io"
)

// DataWriter writes a message as the content of the DATA command (RFC 5321
// section 4.5.2): every line end (CRLF, bare LF or bare CR) becomes CRLF,
// so no server can see a line end, or an end of data, that another server
// would not (the SMTP smuggling class); a line that starts with "." gets
// another. Close ends the last line when needed and writes ".\r\n".
type DataWriter struct {
	w       *bufio.Writer
	bol     bool // at the beginning of a line
	cr      bool // the last byte was a CR, whose LF may follow
	written int64
}

// NewDataWriter starts the content at the beginning of a line.
func NewDataWriter(w *bufio.Writer) *DataWriter {
	return &DataWriter{w: w, bol: true}
}

// Write converts and writes p.
func (d *DataWriter) Write(p []byte) (int, error) {
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\n' && d.cr:
			// The LF of a CRLF whose CR was written as CRLF already.
			d.cr = false
			i++
			continue
		case c == '\r' || c == '\n':
			if _, err := d.w.WriteString("\r\n"); err != nil {
				return i, err
			}
			d.cr = c == '\r'
			d.bol = true
			i++
			continue
		}
		d.cr = false
		if d.bol && c == '.' {
			if err := d.w.WriteByte('.'); err != nil {
				return i, err
			}
		}
		d.bol = false
		// Copy the run up to the next line end in one piece.
		j := i + 1
		for j < len(p) && p[j] != '\r' && p[j] != '\n' {
			j++
		}
		if _, err := d.w.Write(p[i:j]); err != nil {
			return i, err
		}
		i = j
	}
	d.written += int64(len(p))
	return len(p), nil
}

// Close ends the content: a last line without a line end gets CRLF, then
// the ".\r\n" terminator. It does not flush.
func (d *DataWriter) Close() error {
	if !d.bol {
		if _, err := d.w.WriteString("\r\n"); err != nil {
			return err
		}
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}

// copyData writes the message from r through a DataWriter onto w.
func copyData(w *bufio.Writer, r io.Reader) error {
	d := NewDataWriter(w)
	if _, err := io.Copy(d, r); err != nil {
		return err
	}
	return d.Close()
}
