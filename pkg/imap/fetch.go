package imap

import (
	"bufio"
	"bytes"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"postdove/pkg/maildir"
)

// maxMessage caps what one FETCH reads of a message into memory.
const maxMessage = 256 << 20

func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	items, kw := s.items(numSet)
	seen := false
	for _, sec := range options.BodySection {
		seen = seen || !sec.Peek
	}
	for _, sec := range options.BinarySection {
		seen = seen || !sec.Peek
	}
	flags := options.Flags
	if seen && !s.readOnly {
		var changes []maildir.FlagChange
		mine := map[uint32]bool{}
		for _, it := range items {
			if !strings.Contains(it.msg.Flags(), "S") {
				changes = append(changes, maildir.FlagChange{UID: it.msg.UID, Flags: addLetters(it.msg.Flags(), "S"), Keywords: it.msg.Keywords(&kw)})
				mine[it.msg.UID] = true
			}
		}
		if len(changes) > 0 {
			if err := s.box.mb.SetFlags(changes...); err == nil {
				s.box.refresh(s.tracker, mine)
				items, kw = s.items(numSet)
				flags = true
			}
		}
	}
	// In chunks: the envelopes no Sync has read yet are read for the
	// next chunk while the responses of this one go out.
	// The index keeps them once, after the last response.
	const chunk = 1024
	var loaded []maildir.Message
	var pending chan []maildir.Message // the next chunk's, being read
	load := func(part []item) {
		pending = make(chan []maildir.Message, 1)
		go func(ch chan []maildir.Message) { ch <- s.box.loadEnvelopes(part, nil) }(pending)
	}
	defer func() {
		if pending != nil {
			loaded = append(loaded, <-pending...)
		}
		if len(loaded) > 0 {
			s.box.mb.KeepEnvelopes(loaded)
		}
	}()
	if options.Envelope {
		load(items[:min(chunk, len(items))])
	}
	for len(items) > 0 {
		n := min(chunk, len(items))
		if pending != nil {
			loaded = append(loaded, <-pending...)
			pending = nil
		}
		if rest := items[n:]; options.Envelope && len(rest) > 0 {
			load(rest[:min(chunk, len(rest))])
		}
		for i := range items[:n] {
			if err := s.fetchOne(w, &items[i], &kw, options, flags); err != nil {
				return err
			}
		}
		items = items[n:]
	}
	return nil
}

// loadEnvelopes reads the envelopes of items that are not known yet
// (SELECT does not read the messages), shares them with the box and
// appends the messages read to loaded.
func (b *box) loadEnvelopes(items []item, loaded []maildir.Message) []maildir.Message {
	var msgs []maildir.Message
	var at []int
	for i := range items {
		if items[i].msg.EnvelopeKey() == "" {
			msgs = append(msgs, items[i].msg)
			at = append(at, i)
		}
	}
	if len(msgs) == 0 || b.mb.LoadEnvelopes(msgs) == 0 {
		return loaded
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for j, i := range at {
		items[i].msg.ShareEnvelope(&msgs[j])
		k := sort.Search(len(b.msgs), func(k int) bool { return b.msgs[k].UID >= msgs[j].UID })
		if k < len(b.msgs) {
			b.msgs[k].ShareEnvelope(&msgs[j])
		}
	}
	return append(loaded, msgs...)
}

// fetchOne writes the FETCH response of one message.
func (s *session) fetchOne(w *imapserver.FetchWriter, it *item, kw *maildir.Keywords, options *imap.FetchOptions, flags bool) error {
	m := &it.msg
	var content []byte
	load := func() []byte {
		if content == nil {
			content = s.content(m)
		}
		return content
	}
	rw := w.CreateMessage(it.seq)
	if options.UID {
		rw.WriteUID(imap.UID(m.UID))
	}
	if flags {
		rw.WriteFlags(messageFlags(m, kw))
	}
	if options.InternalDate {
		rw.WriteInternalDate(m.Date)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(m.VSize)
	}
	if options.Envelope {
		rw.WriteEnvelope(s.envelope(m, load))
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(load())))
	}
	for _, sec := range options.BodySection {
		var b []byte
		if sec.Specifier == imap.PartSpecifierNone && len(sec.Part) == 0 && sec.Partial == nil {
			b = load()
		} else {
			b = imapserver.ExtractBodySection(bytes.NewReader(load()), sec)
		}
		switch sec.Specifier {
		case imap.PartSpecifierHeader:
			s.stats.hdrCount++
			s.stats.hdrBytes += int64(len(b))
		default:
			s.stats.bodyCount++
			s.stats.bodyBytes += int64(len(b))
		}
		if err := writeLiteral(rw.WriteBodySection(sec, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, sec := range options.BinarySection {
		b := imapserver.ExtractBinarySection(bytes.NewReader(load()), sec)
		if err := writeLiteral(rw.WriteBinarySection(sec, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, sec := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(sec, imapserver.ExtractBinarySectionSize(bytes.NewReader(load()), sec))
	}
	return rw.Close()
}

func writeLiteral(w io.WriteCloser, b []byte) error {
	_, err := w.Write(b)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// content reads a message with CRLF line ends, as IMAP serves it; a
// message that can not be read any more is empty.
func (s *session) content(m *maildir.Message) []byte {
	f, err := s.box.mb.OpenMessage(m)
	if err != nil {
		return []byte{}
	}
	defer f.Close()
	var buf bytes.Buffer
	if m.VSize > 0 && m.VSize < maxMessage {
		buf.Grow(int(m.VSize))
	}
	toCRLF(&buf, io.LimitReader(f, maxMessage))
	return buf.Bytes()
}

// toCRLF copies r to w with every bare LF written as CRLF.
func toCRLF(w *bytes.Buffer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64*1024)
	prevCR := false
	for {
		chunk, err := br.ReadSlice('\n')
		if n := len(chunk); n > 0 {
			if chunk[n-1] == '\n' && !(n >= 2 && chunk[n-2] == '\r' || n == 1 && prevCR) {
				w.Write(chunk[:n-1])
				w.WriteString("\r\n")
			} else {
				w.Write(chunk)
			}
			prevCR = chunk[n-1] == '\r'
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// envelope returns a message's ENVELOPE from the fields the index keeps,
// or from its header when the index does not know them.
func (s *session) envelope(m *maildir.Message, load func() []byte) *imap.Envelope {
	key := m.EnvelopeKey()
	if key == "" {
		return parseEnvelope(m, load)
	}
	return s.srv.envelopes.get(key, func() *imap.Envelope { return parseEnvelope(m, load) })
}

// parseEnvelope makes a message's ENVELOPE.
func parseEnvelope(m *maildir.Message, load func() []byte) *imap.Envelope {
	var h textproto.Header
	if e, ok := m.Envelope(); ok {
		for _, f := range []struct{ k, v string }{
			{"Date", e.Date}, {"Subject", e.Subject}, {"From", e.From}, {"Sender", e.Sender},
			{"Reply-To", e.ReplyTo}, {"To", e.To}, {"Cc", e.Cc}, {"Bcc", e.Bcc},
			{"In-Reply-To", e.InReplyTo}, {"Message-Id", e.MessageID},
		} {
			if f.v != "" {
				h.Add(f.k, f.v)
			}
		}
	} else if hh, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(load()))); err == nil {
		h = hh
	}
	return imapserver.ExtractEnvelope(h)
}

// envelopeCache keeps parsed ENVELOPEs by their raw fields
// (Message.EnvelopeKey), so that fetching a mailbox again does not parse
// its addresses and dates again. Past maxCachedEnvelopes it keeps what it
// has and adds no more (a scan of a larger mailbox would otherwise evict
// everything before it is asked for again).
type envelopeCache struct {
	mu sync.Mutex
	m  map[string]*imap.Envelope
}

const maxCachedEnvelopes = 100000

func (c *envelopeCache) get(key string, parse func() *imap.Envelope) *imap.Envelope {
	c.mu.Lock()
	e := c.m[key]
	c.mu.Unlock()
	if e != nil {
		return e
	}
	e = parse()
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*imap.Envelope{}
	}
	if len(c.m) < maxCachedEnvelopes {
		// A copy: key may share the memory of a whole index file.
		c.m[strings.Clone(key)] = e
	}
	c.mu.Unlock()
	return e
}
