package cleanup

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"postdove/pkg/addr"
)

// header is one message header with its continuation lines, as read
// (raw ends in "\n").
type header struct {
	name string // lower case
	raw  string
}

func (h *header) value() string {
	i := strings.IndexByte(h.raw, ':')
	return h.raw[i+1:]
}

// HeaderName returns the name of a header line ("" when the line is not
// one): printable ASCII other than ':' and space, then optional blanks and
// a colon.
func HeaderName(line []byte) string {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return ""
	}
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if j >= len(line) || line[j] != ':' {
		return ""
	}
	return string(line[:i])
}

// readHeaders reads the primary header block. It stops at an empty line
// (consumed) or at the first line that is neither a header nor a
// continuation; that line, or its first part when it is long (the rest
// stays in br), is returned as the start of the body. A final line
// without a newline gets one.
//
// A header keeps at most limit bytes (header_size_limit; its final
// newline not counted) and the excess is discarded, as Postfix's cleanup
// does: a first line longer than limit is cut there, and from the first
// continuation line that does not fit whole on, the header's remaining
// continuation lines are dropped. Time and memory are linear in the
// input and bounded by limit per header.
func readHeaders(br *bufio.Reader, limit int) (hdrs []header, bodyStart string, err error) {
	if limit <= 0 {
		limit = defaultHeaderSizeLimit
	}
	var cur []byte     // the header being read, without its final newline
	var curName string // its name, lower case
	full := false      // cur has dropped text: later continuations go too
	var cont []byte    // a continuation line being read
	end := func() {
		if cur != nil {
			hdrs = append(hdrs, header{name: curName, raw: string(append(cur, '\n'))})
			cur, full = nil, false
		}
	}
	for {
		first, err := br.ReadSlice('\n')
		more := errors.Is(err, bufio.ErrBufferFull) // the line goes on
		if err != nil && !more && !errors.Is(err, io.EOF) {
			return nil, "", err
		}
		if len(first) == 0 {
			end()
			return hdrs, "", nil
		}
		line := first
		if !more {
			line = bytes.TrimSuffix(first, []byte("\n"))
		}
		switch {
		case !more && (len(line) == 0 || string(line) == "\r"):
			end()
			return hdrs, "", nil
		case (line[0] == ' ' || line[0] == '\t') && cur != nil:
			if full {
				if err := skipLine(br, more); err != nil {
					return nil, "", err
				}
				break
			}
			// Keep it when "\n"+line fits in what is left.
			room := limit - len(cur) - 1
			cont = append(cont[:0], line[:min(len(line), room+1)]...)
			if more {
				if cont, err = readRest(br, cont, room+1); err != nil {
					return nil, "", err
				}
			}
			if len(cont) > room {
				full = true
				break
			}
			cur = append(append(cur, '\n'), cont...)
		default:
			name := HeaderName(line)
			if name == "" {
				end()
				if more {
					return hdrs, string(first), nil
				}
				return hdrs, string(line) + "\n", nil
			}
			end()
			curName = strings.ToLower(name)
			cur = append(make([]byte, 0, min(len(line), limit)+64), line[:min(len(line), limit+1)]...)
			if more {
				if cur, err = readRest(br, cur, limit); err != nil {
					return nil, "", err
				}
			}
			if len(cur) > limit {
				cur, full = cur[:limit], true
			}
		}
		if errors.Is(err, io.EOF) {
			end()
			return hdrs, "", nil
		}
	}
}

// defaultHeaderSizeLimit is header_size_limit's default.
const defaultHeaderSizeLimit = 102400

// readRest reads the rest of a long line (its newline consumed), appending
// to b while b is shorter than max+1 bytes and discarding the remainder:
// a result longer than max means the line was longer.
func readRest(br *bufio.Reader, b []byte, max int) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		more := errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !more && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if !more {
			chunk = bytes.TrimSuffix(chunk, []byte("\n"))
		}
		if n := max + 1 - len(b); n > 0 {
			b = append(b, chunk[:min(len(chunk), n)]...)
		}
		if !more {
			return b, nil
		}
	}
}

// skipLine discards the rest of the current line when more says it goes on.
func skipLine(br *bufio.Reader, more bool) error {
	for more {
		_, err := br.ReadSlice('\n')
		more = errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !more && !errors.Is(err, io.EOF) {
			return err
		}
	}
	return nil
}

// headerState is what cleanup learns from the headers.
type headerState struct {
	hops       int
	messageID  string
	date, from bool
}

// Address headers whose addresses are sender or recipient addresses.
var (
	senderHeaders = map[string]bool{
		"from": true, "sender": true, "reply-to": true, "errors-to": true,
		"return-receipt-to": true, "resent-from": true, "resent-sender": true,
		"resent-reply-to": true,
	}
	recipientHeaders = map[string]bool{
		"to": true, "cc": true, "bcc": true, "resent-to": true,
		"resent-cc": true, "resent-bcc": true, "apparently-to": true,
	}
)

// header processes one header; it reports whether to keep it.
func (c *Cleanup) header(h *header, sub *Submission, local bool, st *headerState) (bool, error) {
	switch h.name {
	case "received":
		st.hops++
	case "message-id":
		st.messageID = strings.TrimSpace(unfold(h.value()))
	case "date":
		st.date = true
	case "from":
		st.from = true
	case "bcc":
		if sub.Extracted {
			return false, nil
		}
	}
	if !local {
		return true, nil
	}
	var mapper func(string) (string, error)
	switch {
	case senderHeaders[h.name]:
		mapper = c.mapSender
	case recipientHeaders[h.name]:
		mapper = c.mapRecipientHeader
	default:
		return true, nil
	}
	var ferr error
	name := h.raw[:strings.IndexByte(h.raw, ':')]
	// Beyond header_address_token_limit tokens the header is dropped.
	orig := h.value()
	val := addr.CutTokens(orig, c.tokenMax)
	val = addr.RewriteList(val, func(a string) string {
		if a == "" || ferr != nil {
			return a
		}
		n, err := mapper(a)
		if err != nil {
			ferr = err
			return a
		}
		return n
	})
	if ferr != nil {
		return false, ferr
	}
	if val != orig {
		// A header Postfix changes it writes anew, in its own layout.
		h.raw = addr.FoldHeader(strings.TrimRight(name, " \t"), val)
	}
	return true, nil
}

func unfold(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
