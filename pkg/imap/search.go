package imap

import (
	"bufio"
	"bytes"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"postdove/pkg/maildir"
)

func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	items, kw := s.items(imap.SeqSet{{Start: 1, Stop: 0}})
	var seqs imap.SeqSet
	var uids imap.UIDSet
	data := &imap.SearchData{}
	var maxSeq uint32
	var maxUID imap.UID
	if n := len(items); n > 0 {
		maxSeq, maxUID = items[n-1].seq, imap.UID(items[n-1].msg.UID)
	}
	for i := range items {
		it := &items[i]
		c := candidate{seq: it.seq, maxSeq: maxSeq, maxUID: maxUID, msg: &it.msg, kw: &kw, load: func() []byte { return s.content(&it.msg) }}
		if !c.match(criteria) {
			continue
		}
		n := it.seq
		if kind == imapserver.NumKindUID {
			n = it.msg.UID
			uids.AddNum(imap.UID(n))
		} else {
			seqs.AddNum(n)
		}
		if data.Min == 0 || n < data.Min {
			data.Min = n
		}
		if n > data.Max {
			data.Max = n
		}
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	return data, nil
}

// candidate is a message being matched against search criteria; its
// content is read only when a key needs it, and once.
type candidate struct {
	seq     uint32
	maxSeq  uint32 // what '*' stands for
	maxUID  imap.UID
	msg     *maildir.Message
	kw      *maildir.Keywords
	load    func() []byte
	content []byte
	header  *textproto.Header
}

func (c *candidate) body() []byte {
	if c.content == nil {
		c.content = c.load()
	}
	return c.content
}

func (c *candidate) hdr() *textproto.Header {
	if c.header == nil {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(c.body())))
		if err != nil {
			h = textproto.Header{}
		}
		c.header = &h
	}
	return c.header
}

// text is the body after the header.
func (c *candidate) text() []byte {
	b := c.body()
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return b[i+4:]
	}
	return nil
}

// containsFoldASCII reports whether s contains sub, ignoring ASCII case,
// as Dovecot's default (i;unicode-casemap is close enough for ASCII).
func containsFoldASCII(s []byte, sub string) bool {
	return bytes.Contains(bytes.ToLower(s), []byte(strings.ToLower(sub)))
}

// day is the date part of t in its own zone, as SEARCH compares dates.
func day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// match reports whether the message meets every criterion.
func (c *candidate) match(cr *imap.SearchCriteria) bool {
	for _, set := range cr.SeqNum {
		if set = resolveSeq(set, c.maxSeq); !set.Contains(c.seq) {
			return false
		}
	}
	for _, set := range cr.UID {
		if !resolveUID(set, c.maxUID).Contains(imap.UID(c.msg.UID)) {
			return false
		}
	}
	if !cr.Since.IsZero() && day(c.msg.Date).Before(day(cr.Since)) {
		return false
	}
	if !cr.Before.IsZero() && !day(c.msg.Date).Before(day(cr.Before)) {
		return false
	}
	if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
		mh := mail.Header{Header: gomessage.Header{Header: *c.hdr()}}
		sent, err := mh.Date()
		if err != nil {
			return false
		}
		if !cr.SentSince.IsZero() && day(sent).Before(day(cr.SentSince)) {
			return false
		}
		if !cr.SentBefore.IsZero() && !day(sent).Before(day(cr.SentBefore)) {
			return false
		}
	}
	for _, hf := range cr.Header {
		vals := c.hdr().Values(hf.Key)
		if len(vals) == 0 {
			return false
		}
		found := false
		for _, v := range vals {
			found = found || containsFoldASCII([]byte(v), hf.Value)
		}
		if !found {
			return false
		}
	}
	for _, b := range cr.Body {
		if !containsFoldASCII(c.text(), b) {
			return false
		}
	}
	for _, t := range cr.Text {
		if !containsFoldASCII(c.body(), t) {
			return false
		}
	}
	flags := messageFlags(c.msg, c.kw)
	for _, f := range cr.Flag {
		if !hasFlag(flags, f, c.msg) {
			return false
		}
	}
	for _, f := range cr.NotFlag {
		if hasFlag(flags, f, c.msg) {
			return false
		}
	}
	if cr.Larger > 0 && c.msg.VSize <= cr.Larger {
		return false
	}
	if cr.Smaller > 0 && c.msg.VSize >= cr.Smaller {
		return false
	}
	for i := range cr.Not {
		if c.match(&cr.Not[i]) {
			return false
		}
	}
	for i := range cr.Or {
		if !c.match(&cr.Or[i][0]) && !c.match(&cr.Or[i][1]) {
			return false
		}
	}
	return true
}

func hasFlag(flags []imap.Flag, f imap.Flag, m *maildir.Message) bool {
	if strings.EqualFold(string(f), "\\Recent") {
		return m.Recent()
	}
	if strings.EqualFold(string(f), "\\New") {
		return m.Recent() && !strings.Contains(m.Flags(), "S")
	}
	if strings.EqualFold(string(f), "\\Old") {
		return !m.Recent()
	}
	for _, x := range flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}
