package maildir

import (
	"bytes"
	"encoding/binary"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
)

// Envelope is the raw header values that IMAP's ENVELOPE (RFC 3501
// §7.4.2) is made of: each the first such field of the message's
// header, unfolded, as the bytes it holds (no MIME decoding), without
// the surrounding white space, at most MaxEnvelopeField bytes; "" when
// the header has no such field.
type Envelope struct {
	Date, Subject, From, Sender, ReplyTo, To, Cc, Bcc, InReplyTo, MessageID string
}

// MaxEnvelopeField caps each Envelope value.
const MaxEnvelopeField = 8192

// maxHeaderRead is how much of a file is read for its envelope.
const maxHeaderRead = 256 * 1024

// envNames are the fields of an Envelope in its order, lower case.
var envNames = [...]string{"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id"}

const envFields = len(envNames)

func (e *Envelope) fields() [envFields]*string {
	return [envFields]*string{&e.Date, &e.Subject, &e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc, &e.InReplyTo, &e.MessageID}
}

// Envelope returns the message's envelope, and false when the Sync that
// made m did not know it.
func (m *Message) Envelope() (Envelope, bool) {
	var e Envelope
	if m.env == "" {
		return e, false
	}
	p := m.env[2*envFields:]
	for i, f := range e.fields() {
		n := int(binary.LittleEndian.Uint16([]byte(m.env[2*i : 2*i+2])))
		*f, p = p[:n], p[n:]
	}
	return e, true
}

// encodeEnvelope is the compact form of an envelope kept in Message and
// postdove.index: the lengths of its fields (u16 each), then their bytes.
func encodeEnvelope(e *Envelope) string {
	n := 2 * envFields
	for _, f := range e.fields() {
		n += len(*f)
	}
	b := make([]byte, 0, n)
	for _, f := range e.fields() {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(*f)))
	}
	for _, f := range e.fields() {
		b = append(b, *f...)
	}
	return string(b)
}

// validEnvelope reports whether s is an encoded envelope.
func validEnvelope(s string) bool {
	if len(s) < 2*envFields {
		return false
	}
	n := 2 * envFields
	for i := 0; i < envFields; i++ {
		l := int(binary.LittleEndian.Uint16([]byte(s[2*i : 2*i+2])))
		if l > MaxEnvelopeField {
			return false
		}
		n += l
	}
	return n == len(s)
}

// parseEnvelope takes the envelope from a message's header block (what
// precedes the first empty line; LF or CRLF line ends).
func parseEnvelope(h []byte) Envelope {
	var e Envelope
	var seen [envFields]bool
	fs := e.fields()
	for len(h) > 0 {
		// The header ends at an empty line.
		if h[0] == '\n' || len(h) > 1 && h[0] == '\r' && h[1] == '\n' {
			break
		}
		// One field: a line and its continuation lines.
		end := 0
		for {
			i := bytes.IndexByte(h[end:], '\n')
			if i < 0 {
				end = len(h)
				break
			}
			end += i + 1
			if end >= len(h) || (h[end] != ' ' && h[end] != '\t') {
				break
			}
		}
		field := h[:end]
		h = h[end:]
		colon := bytes.IndexByte(field, ':')
		if colon <= 0 {
			continue
		}
		name := bytes.TrimRight(field[:colon], " \t")
		for i, n := range envNames {
			if seen[i] || !bytes.EqualFold(name, []byte(n)) {
				continue
			}
			seen[i] = true
			*fs[i] = unfold(field[colon+1:])
			break
		}
	}
	return e
}

// unfold removes the line breaks of a folded field value and the white
// space around it, and caps it at MaxEnvelopeField bytes.
func unfold(v []byte) string {
	out := make([]byte, 0, len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' {
			out = append(out, c)
		}
	}
	out = bytes.Trim(out, " \t")
	if len(out) > MaxEnvelopeField {
		out = out[:MaxEnvelopeField]
	}
	return string(out)
}

// headerChunk is how much of a message file one read takes: most
// headers fit.
const headerChunk = 4096

// readEnvelopeFile reads the envelope from the header of a message file:
// only up to the empty line that ends it (at most maxHeaderRead bytes),
// a chunk at a time, into scratch (kept for the next file).
func readEnvelopeFile(f io.Reader, scratch *[]byte) string {
	buf := (*scratch)[:0]
	for len(buf) < maxHeaderRead {
		if cap(buf)-len(buf) < headerChunk {
			buf = slices.Grow(buf, max(headerChunk, len(buf)))
		}
		prev := len(buf)
		n, err := f.Read(buf[prev:min(cap(buf), maxHeaderRead)])
		buf = buf[:prev+n]
		if n == 0 || err != nil || headerEnded(buf, prev) {
			break
		}
	}
	*scratch = buf
	e := parseEnvelope(buf)
	return encodeEnvelope(&e)
}

// headerEnded reports whether buf, of which the bytes from prev on are
// new, holds the empty line that ends a header.
func headerEnded(buf []byte, prev int) bool {
	if prev == 0 && (bytes.HasPrefix(buf, []byte("\n")) || bytes.HasPrefix(buf, []byte("\r\n"))) {
		return true
	}
	from := max(0, prev-2)
	return bytes.Contains(buf[from:], []byte("\n\n")) || bytes.Contains(buf[from:], []byte("\n\r\n"))
}

// LoadEnvelopes reads the envelopes that msgs (from a Sync of m) do not
// know yet from the messages' headers and sets them in msgs; it returns
// how many it read. A message that can not be read any more stays
// without. KeepEnvelopes then records them for later Syncs. Several
// files are read at once.
func (m *Mailbox) LoadEnvelopes(msgs []Message) int {
	var n atomic.Int64
	forEachFile(len(msgs), func(lo, hi int, scratch *[]byte) {
		for i := lo; i < hi; i++ {
			msg := &msgs[i]
			if msg.env != "" {
				continue
			}
			// A bare descriptor (os.Open would also fstat it and try
			// to register it for polling), unless the file has moved.
			fd, err := syscall.Open(filepath.Join(m.Dir, msg.Path()), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err == nil {
				msg.env = readEnvelopeFile(fdReader(fd), scratch)
				syscall.Close(fd)
			} else {
				f, err := m.OpenMessage(msg)
				if err != nil {
					continue
				}
				msg.env = readEnvelopeFile(f, scratch)
				f.Close()
			}
			n.Add(1)
		}
	})
	return int(n.Load())
}

// KeepEnvelopes adds the envelopes msgs know to the folder's index where
// it lacks them, so that later Syncs know them.
func (m *Mailbox) KeepEnvelopes(msgs []Message) {
	got := make(map[uint32]*Message, len(msgs))
	for i := range msgs {
		if msgs[i].env != "" {
			got[msgs[i].UID] = &msgs[i]
		}
	}
	if len(got) == 0 {
		return
	}
	// The index as it is now, with the envelopes added: still a cache
	// of the versions it names, whoever wrote it.
	x, err := readIndexFile(m.Dir)
	if err != nil {
		return
	}
	changed := false
	for i := range x.msgs {
		xm := &x.msgs[i]
		if g := got[xm.UID]; g != nil && xm.env == "" && xm.Base == g.Base {
			xm.env, changed = g.env, true
		}
	}
	if changed {
		writeAtomicNoSync(filepath.Join(m.Dir, IndexName), marshalIndex(x), m.store.opts)
	}
}

// headerCapture keeps the header block of what is written through it,
// up to maxHeaderRead bytes.
type headerCapture struct {
	buf  []byte
	line int // where the line being written starts in buf
	done bool
}

func (c *headerCapture) Write(p []byte) (int, error) {
	if c.done {
		return len(p), nil
	}
	start := len(c.buf)
	if room := maxHeaderRead - len(c.buf); len(p) > room {
		c.buf = append(c.buf, p[:room]...)
		c.done = true
	} else {
		c.buf = append(c.buf, p...)
	}
	// The header ends at an empty line (LF or CR LF).
	for i := start; i < len(c.buf); i++ {
		if c.buf[i] != '\n' {
			continue
		}
		if l := c.buf[c.line:i]; len(l) == 0 || len(l) == 1 && l[0] == '\r' {
			c.buf = c.buf[:i+1]
			c.done = true
			break
		}
		c.line = i + 1
	}
	return len(p), nil
}

// savedEnvelopes remembers the envelopes of the messages this process
// saved (by base name), so that the Sync after a Deliver or Copy does not
// read the files again. When another process's Sync indexed them first,
// they are never taken: past maxSaved, all are forgotten.
var (
	savedEnvelopes sync.Map
	savedCount     atomic.Int64
)

const maxSaved = 4096

func rememberEnvelope(dir, base, env string) {
	if env == "" {
		return
	}
	if savedCount.Add(1) > maxSaved {
		savedEnvelopes.Clear()
		savedCount.Store(1)
	}
	savedEnvelopes.Store(dir+"\x00"+base, env)
}

// takeEnvelope returns (and forgets) what rememberEnvelope kept.
func takeEnvelope(dir, base string) string {
	v, ok := savedEnvelopes.LoadAndDelete(dir + "\x00" + base)
	if !ok {
		return ""
	}
	return v.(string)
}

// ShareEnvelope gives m the envelope that o, the same message as another
// Sync or LoadEnvelopes saw it, knows, when m does not know it.
func (m *Message) ShareEnvelope(o *Message) {
	if m.env == "" && m.UID == o.UID && m.Base == o.Base {
		m.env = o.env
	}
}

// EnvelopeKey is the envelope in a compact form, the same for the same
// envelope; "" when not known.
func (m *Message) EnvelopeKey() string { return m.env }

// fdReader reads a file descriptor.
type fdReader int

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(r), p)
		if err == syscall.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		if n == 0 && err == nil && len(p) > 0 {
			err = io.EOF
		}
		return n, err
	}
}
