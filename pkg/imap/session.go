package imap

import (
	"errors"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postdove/pkg/maildir"
)

// session is one client's IMAP session in the authenticated and selected
// states.
type session struct {
	srv   *Server
	store *maildir.Store
	ns    namespace
	stats *stats
	log   logger

	box      *box
	tracker  *imapserver.SessionTracker
	readOnly bool
}

// stats are the counters of Dovecot's imap_logout_format.
type stats struct {
	deleted, expunged, trashed int
	hdrCount, bodyCount        int
	hdrBytes, bodyBytes        int64
}

var (
	errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Mailbox is read-only"}
	errInternal = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug,
		Text: "Internal error occurred. Refer to server log for more information."}
)

func noMailbox(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "Mailbox doesn't exist: " + name}
}

// recode gives a "mailbox doesn't exist" reply the code that the
// command's reply has in Dovecot (none for SELECT, TRYCREATE for APPEND).
func recode(err error, code imap.ResponseCode) error {
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
		return &imap.Error{Type: ie.Type, Code: code, Text: ie.Text}
	}
	return err
}

// storeErr turns a store error into the reply Dovecot gives.
func (s *session) storeErr(name string, err error) error {
	var ie *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return err
	case errors.Is(err, maildir.ErrNoMailbox):
		return noMailbox(name)
	case errors.Is(err, maildir.ErrExists):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	case errors.Is(err, maildir.ErrInboxDelete):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "INBOX can't be deleted."}
	case errors.Is(err, maildir.ErrBadName):
		return invalidName("Contains invalid characters")
	}
	s.log.Printf("%s: %v", name, err)
	return errInternal
}

// mailbox opens the store's mailbox for a client's name.
func (s *session) mailbox(name string) (*maildir.Mailbox, string, error) {
	sn, err := s.ns.storeName(name)
	if err != nil {
		return nil, "", err
	}
	mb, err := s.store.Mailbox(sn)
	if err != nil {
		return nil, sn, s.storeErr(name, err)
	}
	return mb, sn, nil
}

func (s *session) Close() error {
	s.Unselect()
	return nil
}

func (s *session) Login(username, password string) error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Already logged in"}
}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	mb, _, err := s.mailbox(name)
	if err != nil {
		return nil, recode(err, "")
	}
	b, err := s.srv.acquire(mb)
	if err != nil {
		return nil, s.storeErr(name, err)
	}
	if err := b.refresh(nil, nil); err != nil {
		s.srv.release(b)
		return nil, s.storeErr(name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s.box, s.tracker, s.readOnly = b, b.tracker.NewSession(), options.ReadOnly
	data := &imap.SelectData{
		Flags:          mailboxFlags(&b.keywords),
		PermanentFlags: append(mailboxFlags(&b.keywords), "\\*"),
		NumMessages:    uint32(len(b.msgs)),
		UIDNext:        imap.UID(b.uidNext),
		UIDValidity:    b.uidValidity,
	}
	if options.ReadOnly {
		data.PermanentFlags = []imap.Flag{}
	}
	for i := range b.msgs {
		m := &b.msgs[i]
		if m.Recent() {
			data.NumRecent++
		}
		if data.FirstUnseenSeqNum == 0 && !strings.Contains(m.Flags(), "S") {
			data.FirstUnseenSeqNum = uint32(i + 1)
		}
	}
	return data, nil
}

func (s *session) Unselect() error {
	if s.box != nil {
		s.tracker.Close()
		s.srv.release(s.box)
		s.box, s.tracker = nil, nil
	}
	return nil
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	// As Dovecot: one trailing separator goes, then the name is checked
	// ("." is then empty, ".." begins with the separator).
	name = strings.TrimSuffix(name, string(s.ns.sep))
	sn, err := s.ns.storeName(name)
	if err != nil {
		return err
	}
	return s.storeErr(name, s.store.Create(sn))
}

func (s *session) Delete(name string) error {
	sn, err := s.ns.storeName(name)
	if err != nil {
		return err
	}
	if sn == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "INBOX can't be deleted."}
	}
	if s.box != nil && s.box.mb.Name == sn {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Can't delete the selected mailbox"}
	}
	if err := s.store.Delete(sn); err != nil {
		return s.storeErr(name, err)
	}
	s.store.Subscribe(sn, false)
	return nil
}

func (s *session) Rename(from, to string, options *imap.RenameOptions) error {
	sf, err := s.ns.storeName(from)
	if err != nil {
		return err
	}
	st, err := s.ns.storeName(to)
	if err != nil {
		return err
	}
	if sf == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Renaming INBOX isn't supported"}
	}
	return s.storeErr(from, s.store.Rename(sf, st))
}

func (s *session) Subscribe(name string) error {
	if _, _, err := s.mailbox(name); err != nil {
		return recode(err, "")
	}
	sn, _ := s.ns.storeName(name)
	return s.storeErr(name, s.store.Subscribe(sn, true))
}

func (s *session) Unsubscribe(name string) error {
	sn, err := s.ns.storeName(name)
	if err != nil {
		return err
	}
	return s.storeErr(name, s.store.Subscribe(sn, false))
}

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: s.ns.prefix, Delim: rune(s.ns.sep)}}}, nil
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	mb, _, err := s.mailbox(name)
	if err != nil {
		return nil, err
	}
	return s.status(mb, name, options)
}

func (s *session) status(mb *maildir.Mailbox, name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	st, err := mb.Sync()
	if err != nil {
		return nil, s.storeErr(name, err)
	}
	var n, recent, unseen, deleted uint32
	var size int64
	for i := range st.Messages {
		m := &st.Messages[i]
		n++
		size += m.VSize
		f := m.Flags()
		if m.Recent() {
			recent++
		}
		if !strings.Contains(f, "S") {
			unseen++
		}
		if strings.Contains(f, "T") {
			deleted++
		}
	}
	data := &imap.StatusData{Mailbox: name}
	if options.NumMessages {
		data.NumMessages = &n
	}
	if options.NumRecent {
		data.NumRecent = &recent
	}
	if options.UIDNext {
		data.UIDNext = imap.UID(st.UIDNext)
	}
	if options.UIDValidity {
		data.UIDValidity = st.UIDValidity
	}
	if options.NumUnseen {
		data.NumUnseen = &unseen
	}
	if options.NumDeleted {
		data.NumDeleted = &deleted
	}
	if options.Size {
		data.Size = &size
	}
	return data, nil
}

func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	mb, _, err := s.mailbox(name)
	if err != nil {
		return nil, recode(err, imap.ResponseCodeTryCreate)
	}
	letters, keywords := flagLetters(options.Flags)
	uid, _, err := mb.Deliver(r, maildir.DeliverOptions{Flags: letters, Keywords: keywords, Date: options.Time})
	if err != nil {
		return nil, s.storeErr(name, err)
	}
	if b := s.srv.lookup(mb.Dir); b != nil {
		b.refresh(nil, nil)
	}
	// The reply needs only the UIDVALIDITY, not a Sync.
	validity, err := mb.UIDValidity()
	if err != nil {
		return nil, s.storeErr(name, err)
	}
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: validity}, nil
}

// flagLetters splits IMAP flags into Maildir letters and keywords;
// \Recent and unknown system flags are dropped.
func flagLetters(flags []imap.Flag) (string, []string) {
	var letters []byte
	var keywords []string
	seen := map[string]bool{}
	for _, f := range flags {
		if strings.HasPrefix(string(f), "\\") {
			for _, sf := range systemFlags {
				if strings.EqualFold(string(f), string(sf.flag)) && !seen[string(sf.flag)] {
					letters = append(letters, sf.letter)
					seen[string(sf.flag)] = true
				}
			}
			continue
		}
		if k := string(f); !seen[strings.ToLower(k)] && validKeyword(k) {
			seen[strings.ToLower(k)] = true
			keywords = append(keywords, k)
		}
	}
	sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
	return string(letters), keywords
}

func validKeyword(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.box == nil {
		return nil
	}
	if allowExpunge {
		if err := s.box.refresh(nil, nil); err != nil {
			s.log.Printf("%s: %v", s.box.mb.Name, err)
		}
	}
	return s.tracker.Poll(w, allowExpunge)
}

func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.box == nil {
		<-stop
		return nil
	}
	return s.tracker.Idle(w, stop)
}

// item is one message of the selected mailbox as a command sees it.
type item struct {
	seq uint32 // the client's sequence number
	msg maildir.Message
}

// items returns the messages of numSet that the client knows, in
// sequence order, and the mailbox's keywords.
func (s *session) items(numSet imap.NumSet) ([]item, maildir.Keywords) {
	b := s.box
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []item
	var maxSeq uint32
	var maxUID imap.UID
	seqs := make([]uint32, len(b.msgs))
	for i := range b.msgs {
		seqs[i] = s.tracker.EncodeSeqNum(uint32(i + 1))
		if seqs[i] > maxSeq {
			maxSeq = seqs[i]
		}
		if seqs[i] != 0 {
			maxUID = imap.UID(b.msgs[i].UID)
		}
	}
	var match func(i int) bool
	switch set := numSet.(type) {
	case imap.SeqSet:
		set = resolveSeq(set, maxSeq)
		match = func(i int) bool { return set.Contains(seqs[i]) }
	case imap.UIDSet:
		set = resolveUID(set, maxUID)
		match = func(i int) bool { return set.Contains(imap.UID(b.msgs[i].UID)) }
	default:
		return nil, b.keywords
	}
	for i := range b.msgs {
		if seqs[i] != 0 && match(i) {
			out = append(out, item{seq: seqs[i], msg: b.msgs[i]})
		}
	}
	return out, b.keywords
}

// resolveSeq replaces '*' (0) in a set by max; with an empty mailbox '*'
// matches nothing.
func resolveSeq(set imap.SeqSet, max uint32) imap.SeqSet {
	out := make(imap.SeqSet, 0, len(set))
	for _, r := range set {
		if a, b, ok := resolveRange(r.Start, r.Stop, max); ok {
			out = append(out, imap.SeqRange{Start: a, Stop: b})
		}
	}
	return out
}

func resolveUID(set imap.UIDSet, max imap.UID) imap.UIDSet {
	out := make(imap.UIDSet, 0, len(set))
	for _, r := range set {
		if a, b, ok := resolveRange(uint32(r.Start), uint32(r.Stop), uint32(max)); ok {
			out = append(out, imap.UIDRange{Start: imap.UID(a), Stop: imap.UID(b)})
		}
	}
	return out
}

// resolveRange puts max for '*' and orders a range's ends.
func resolveRange(start, stop, max uint32) (uint32, uint32, bool) {
	if start == 0 {
		start = max
	}
	if stop == 0 {
		stop = max
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop, start != 0
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	if s.readOnly {
		return errReadOnly
	}
	items, kw := s.items(numSet)
	letters, keywords := flagLetters(flags.Flags)
	var changes []maildir.FlagChange
	mine := map[uint32]bool{}
	for _, it := range items {
		f, k := it.msg.Flags(), it.msg.Keywords(&kw)
		switch flags.Op {
		case imap.StoreFlagsSet:
			f, k = letters, keywords
		case imap.StoreFlagsAdd:
			f, k = addLetters(f, letters), addKeywords(k, keywords)
		case imap.StoreFlagsDel:
			f, k = delLetters(f, letters), delKeywords(k, keywords)
		}
		if strings.Contains(f, "T") && !strings.Contains(it.msg.Flags(), "T") {
			s.stats.deleted++
		}
		changes = append(changes, maildir.FlagChange{UID: it.msg.UID, Flags: f, Keywords: k})
		mine[it.msg.UID] = true
	}
	if len(changes) > 0 {
		if err := s.box.mb.SetFlags(changes...); err != nil && !errors.Is(err, maildir.ErrNoMessage) {
			return s.storeErr(s.box.mb.Name, err)
		}
	}
	if err := s.box.refresh(s.tracker, mine); err != nil {
		return s.storeErr(s.box.mb.Name, err)
	}
	if flags.Silent {
		return nil
	}
	_, isUID := numSet.(imap.UIDSet)
	after, kw := s.items(numSet)
	for _, it := range after {
		if !mine[it.msg.UID] {
			continue
		}
		rw := w.CreateMessage(it.seq)
		if isUID {
			rw.WriteUID(imap.UID(it.msg.UID))
		}
		rw.WriteFlags(messageFlags(&it.msg, &kw))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func addLetters(have, add string) string {
	for i := 0; i < len(add); i++ {
		if strings.IndexByte(have, add[i]) < 0 {
			have += add[i : i+1]
		}
	}
	b := []byte(have)
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	return string(b)
}

func delLetters(have, del string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(del, r) {
			return -1
		}
		return r
	}, have)
}

func addKeywords(have, add []string) []string {
	out := append([]string(nil), have...)
	for _, k := range add {
		if !containsFold(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func delKeywords(have, del []string) []string {
	var out []string
	for _, k := range have {
		if !containsFold(del, k) {
			out = append(out, k)
		}
	}
	return out
}

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if s.readOnly {
		return nil
	}
	var set imap.NumSet = imap.SeqSet{{Start: 1, Stop: 0}}
	if uids != nil {
		set = *uids
	}
	items, _ := s.items(set)
	var gone []uint32
	for _, it := range items {
		if strings.Contains(it.msg.Flags(), "T") {
			gone = append(gone, it.msg.UID)
		}
	}
	return s.expunge(gone)
}

// expunge removes messages; the EXPUNGE responses reach this session
// too through its tracker, when imapserver polls after the command.
func (s *session) expunge(uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	if err := s.box.mb.Expunge(uids...); err != nil {
		return s.storeErr(s.box.mb.Name, err)
	}
	s.stats.expunged += len(uids)
	return s.box.refresh(nil, nil)
}

func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	data, _, err := s.copy(numSet, dest)
	return data, err
}

func (s *session) copy(numSet imap.NumSet, dest string) (*imap.CopyData, []uint32, error) {
	dst, sn, err := s.mailbox(dest)
	if err != nil {
		return nil, nil, recode(err, imap.ResponseCodeTryCreate)
	}
	items, _ := s.items(numSet)
	if len(items) == 0 {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "No messages found"}
	}
	var src []uint32
	var srcSet, dstSet imap.UIDSet
	for _, it := range items {
		src = append(src, it.msg.UID)
		srcSet.AddNum(imap.UID(it.msg.UID))
	}
	out, err := s.box.mb.Copy(dst, src...)
	if err != nil {
		return nil, nil, s.storeErr(dest, err)
	}
	for _, u := range out {
		dstSet.AddNum(imap.UID(u))
	}
	st, err := dst.Sync()
	if err != nil {
		return nil, nil, s.storeErr(dest, err)
	}
	for _, a := range s.ns.specialUse(sn) {
		if a == imap.MailboxAttrTrash {
			s.stats.trashed += len(out)
		}
	}
	if b := s.srv.lookup(dst.Dir); b != nil {
		b.refresh(nil, nil)
	}
	return &imap.CopyData{UIDValidity: st.UIDValidity, SourceUIDs: srcSet, DestUIDs: dstSet}, src, nil
}

func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if s.readOnly {
		return errReadOnly
	}
	data, src, err := s.copy(numSet, dest)
	if err != nil {
		return err
	}
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	return s.expunge(src)
}
