package lda

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/mail"
	"os"
	"strings"
)

// maxHeaderCapture bounds how much of the header is kept to find the
// Message-ID for the log line.
const maxHeaderCapture = 64 << 10

// message is the mail read from stdin: a leading mbox "From " line is
// taken off (its sender kept), and the header is looked at before the
// message is saved, so that the log can name its Message-ID.
type message struct {
	src     io.Reader
	start   int64 // where the message starts in a seekable src
	br      *bufio.Reader
	from    string // the sender on a leading "From " line
	header  []byte // the header (or its first maxHeaderCapture bytes)
	started bool
}

func newMessage(src io.Reader) *message {
	m := &message{src: src, start: -1}
	m.br = bufio.NewReaderSize(src, maxHeaderCapture)
	if line, err := m.br.Peek(5); err == nil && string(line) == "From " {
		first, _ := m.br.ReadString('\n')
		if f := strings.Fields(first); len(f) > 1 {
			m.from = f[1]
		}
	}
	if f, ok := src.(*os.File); ok {
		if off, err := f.Seek(0, io.SeekCurrent); err == nil {
			m.start = off - int64(m.br.Buffered())
		}
	}
	b, _ := m.br.Peek(maxHeaderCapture)
	if i := headerEnd(b); i >= 0 {
		b = b[:i]
	} else if i := bytes.LastIndexByte(b, '\n'); i >= 0 && len(b) == maxHeaderCapture {
		b = b[:i+1]
	}
	m.header = append([]byte(nil), b...)
	return m
}

// errReread is the error of a second read of a message that came through
// a pipe.
var errReread = errors.New("message can not be read again")

// Reader returns the message from its start (after any "From " line). A
// second call works only for a seekable input.
func (m *message) Reader() io.Reader {
	if m.started {
		f, ok := m.src.(*os.File)
		if !ok || m.start < 0 {
			return &failReader{errReread}
		}
		if _, err := f.Seek(m.start, io.SeekStart); err != nil {
			return &failReader{err}
		}
		m.br.Reset(f)
	}
	m.started = true
	return m.br
}

// headerEnd is where the blank line that ends the header starts, or -1.
func headerEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("\n")) || bytes.HasPrefix(b, []byte("\r\n")) {
		return 0
	}
	for _, sep := range []string{"\n\n", "\n\r\n"} {
		if i := bytes.Index(b, []byte(sep)); i >= 0 {
			return i + 1
		}
	}
	return -1
}

// ID is the Message-ID for the log, "unspecified" when there is none.
func (m *message) ID() string {
	h := m.header
	msg, err := mail.ReadMessage(io.MultiReader(bytes.NewReader(h), strings.NewReader("\n")))
	if err != nil {
		return scanID(h)
	}
	if id := strings.TrimSpace(msg.Header.Get("Message-Id")); id != "" {
		return sanitizeID(id)
	}
	return "unspecified"
}

// scanID looks for a Message-ID line in a header net/mail cannot parse.
func scanID(h []byte) string {
	for _, line := range strings.Split(string(h), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Message-ID") {
			if v = strings.TrimSpace(v); v != "" {
				return sanitizeID(v)
			}
		}
	}
	return "unspecified"
}

// sanitizeID keeps the log line one line of printable text, at most 200
// bytes of it.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = '?'
		}
	}
	if len(b) > 200 {
		b = append(b[:197], "..."...)
	}
	return string(b)
}

type failReader struct{ err error }

func (f *failReader) Read([]byte) (int, error) { return 0, f.err }
