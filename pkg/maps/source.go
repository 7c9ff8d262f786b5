package maps

// Reading the source text of indexed tables (postmap(1) input): blank
// lines and '#' comment lines are skipped, a line that starts with
// whitespace continues the previous logical line (appended as it is), and
// trailing whitespace of a logical line is dropped. Like Postfix's C
// strings, a NUL byte ends the line's text.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// SourceReader yields the logical lines of a table source file. It reuses
// its buffers: a line is valid until the next call to Next.
type SourceReader struct {
	r      *bufio.Reader
	name   string
	warn   func(string)
	lineno int
	cur    []byte
	pend   []byte
	pendNo int
	hasPnd bool
	long   []byte
	eof    bool
}

// NewSourceReader reads r; name is the file name used in warnings, which
// go to warn (nil discards them).
func NewSourceReader(r io.Reader, name string, warn func(string)) *SourceReader {
	if warn == nil {
		warn = func(string) {}
	}
	return &SourceReader{r: bufio.NewReaderSize(r, 64<<10), name: name, warn: warn}
}

// physical returns the next physical line without its newline.
func (s *SourceReader) physical() ([]byte, error) {
	if s.eof {
		return nil, io.EOF
	}
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.long = append(s.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = s.r.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if err != nil {
		if err != io.EOF {
			return nil, err
		}
		s.eof = true
		if len(line) == 0 {
			return nil, io.EOF
		}
	}
	s.lineno++
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	return line, nil
}

func blankOrComment(line []byte) bool {
	for _, c := range line {
		if !isSpace(c) {
			return c == '#'
		}
	}
	return true
}

// Next returns the next logical line and the number of its first physical
// line; io.EOF at the end.
func (s *SourceReader) Next() ([]byte, int, error) {
	var start int
	if s.hasPnd {
		s.cur, s.pend = s.pend, s.cur
		s.hasPnd = false
		start = s.pendNo
	} else {
		for {
			line, err := s.physical()
			if err != nil {
				return nil, 0, err
			}
			if blankOrComment(line) {
				continue
			}
			if isSpace(line[0]) {
				s.warn(fmt.Sprintf("%s: logical line must not start with whitespace: %q", s.name, cstring(line)))
				continue
			}
			s.cur = append(s.cur[:0], line...)
			start = s.lineno
			break
		}
	}
	for {
		line, err := s.physical()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		if blankOrComment(line) {
			continue
		}
		if isSpace(line[0]) {
			s.cur = append(s.cur, line...)
			continue
		}
		s.pend = append(s.pend[:0], line...)
		s.pendNo = s.lineno
		s.hasPnd = true
		break
	}
	out := cstring(s.cur)
	j := len(out)
	for j > 0 && isSpace(out[j-1]) {
		j--
	}
	return out[:j], start, nil
}

// cstring cuts b at its first NUL, as a C string would end there.
func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// SplitKeyValue splits a postmap(1) source line into key and value at the
// first whitespace; ok is false when there is no value.
func SplitKeyValue(line []byte) (key, val []byte, ok bool) {
	i := 0
	for i < len(line) && !isSpace(line[i]) {
		i++
	}
	key = line[:i]
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	val = line[i:]
	return key, val, len(key) > 0 && len(val) > 0
}

// FoldKey lower-cases ASCII letters of b in place and returns it (Postfix
// folds keys with the C locale's tolower).
func FoldKey(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func foldString(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return string(FoldKey([]byte(s)))
		}
	}
	return s
}
