package sendmail

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"postdove/pkg/addr"
	"postdove/pkg/cleanup"
)

// message reads a message as sendmail does: CRLF becomes LF, a leading
// mbox "From " line is dropped and, unless ignoreDots, a line with a
// single "." ends the input. The header block is read at once (so -t can
// take recipients from it); the rest streams.
type message struct {
	br         *bufio.Reader
	ignoreDots bool
	header     bytes.Buffer // normalized header block, through the blank line
	rcpts      []string     // from To:, Cc:, Bcc: (for -t)
	done       bool         // the end of input was seen
}

func newMessage(r io.Reader, ignoreDots bool) (*message, error) {
	m := &message{br: bufio.NewReaderSize(r, 64*1024), ignoreDots: ignoreDots}
	first := true
	var cur bytes.Buffer // the current header with continuations
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		switch strings.ToLower(cleanup.HeaderName(cur.Bytes())) {
		case "to", "cc", "bcc":
			v := cur.Bytes()[bytes.IndexByte(cur.Bytes(), ':')+1:]
			m.rcpts = append(m.rcpts, addr.ParseList(string(v))...)
		}
		cur.Reset()
	}
	for !m.done {
		line, err := m.line()
		if err != nil {
			return nil, err
		}
		if line == nil {
			break
		}
		if first && bytes.HasPrefix(line, []byte("From ")) {
			first = false
			continue
		}
		first = false
		m.header.Write(line)
		switch {
		case len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && cur.Len() > 0:
			cur.Write(line)
			continue
		case cleanup.HeaderName(line) != "":
			flush()
			cur.Write(line)
			continue
		}
		break // a blank or non-header line ends the headers
	}
	flush()
	return m, nil
}

// line returns the next normalized line (ending in "\n" unless it is the
// last one), or nil at the end of input.
func (m *message) line() ([]byte, error) {
	if m.done {
		return nil, nil
	}
	line, err := m.br.ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err != nil {
		m.done = true
		if len(line) == 0 {
			return nil, nil
		}
	}
	if bytes.HasSuffix(line, []byte("\r\n")) {
		line = append(line[:len(line)-2], '\n')
	}
	if !m.ignoreDots && (string(line) == ".\n" || string(line) == ".") {
		m.done = true
		return nil, nil
	}
	return line, nil
}

// Read implements io.Reader over the whole normalized message.
func (m *message) Read(p []byte) (int, error) {
	for m.header.Len() == 0 {
		line, err := m.line()
		if err != nil {
			return 0, err
		}
		if line == nil {
			return 0, io.EOF
		}
		m.header.Write(line)
	}
	return m.header.Read(p)
}
