package cleanup

import (
	"bufio"
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
// continuation; that line is returned as the start of the body. A final
// line without a newline gets one.
func readHeaders(br *bufio.Reader) (hdrs []header, bodyStart string, err error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, "", err
		}
		if line == "" {
			return hdrs, "", nil
		}
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		switch {
		case line == "\n" || line == "\r\n":
			return hdrs, "", nil
		case (line[0] == ' ' || line[0] == '\t') && len(hdrs) > 0:
			hdrs[len(hdrs)-1].raw += line
		default:
			name := HeaderName([]byte(line))
			if name == "" {
				return hdrs, line, nil
			}
			hdrs = append(hdrs, header{name: strings.ToLower(name), raw: line})
		}
		if err != nil {
			return hdrs, "", nil
		}
	}
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
	name := h.raw[:strings.IndexByte(h.raw, ':')+1]
	val := addr.RewriteList(h.value(), func(a string) string {
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
	h.raw = name + val
	return true, nil
}

func unfold(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
