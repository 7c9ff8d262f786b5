package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"postdove/pkg/mbox/lineconv"
)

// Store is one user's Maildir++ tree as Dovecot lays it out for
// mail_location = maildir:~/Maildir: INBOX is the root folder, every other
// mailbox a folder ".NAME" beside its cur/, new/ and tmp/, NAME in
// modified UTF-7 with '.' between hierarchy levels. Mailbox names in this
// API are UTF-8 with '.' as the hierarchy separator (Dovecot's for
// Maildir++).
type Store struct {
	Root string
	opts Options
}

// OpenStore returns the store rooted at root. The root and INBOX are made
// on first delivery; opts gives owner, modes and host name as for Deliver.
func OpenStore(root string, opts Options) *Store {
	if opts.Hostname == "" {
		opts.Hostname = hostname
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Mode == 0 {
		opts.Mode = 0600
	}
	return &Store{Root: root, opts: opts}
}

// Errors of mailbox operations.
var (
	ErrNoMailbox   = errors.New("mailbox does not exist")
	ErrExists      = errors.New("mailbox already exists")
	ErrBadName     = errors.New("invalid mailbox name")
	ErrNoMessage   = errors.New("no such message")
	ErrInboxDelete = errors.New("INBOX can not be deleted or renamed")
)

// ValidName checks a mailbox name for this layout: no empty levels, no
// "/", no control characters, and short enough for a file name.
func ValidName(name string) error {
	if name == "" {
		return ErrBadName
	}
	for _, p := range strings.Split(name, ".") {
		if p == "" {
			return fmt.Errorf("%w: %q", ErrBadName, name)
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' || r == 0xfffd {
			return fmt.Errorf("%w: %q", ErrBadName, name)
		}
	}
	if len(EncodeMUTF7(name)) > 250 {
		return fmt.Errorf("%w: %q is too long", ErrBadName, name)
	}
	return nil
}

func isInbox(name string) bool { return strings.EqualFold(name, "INBOX") }

// Dir returns the folder of mailbox name.
func (s *Store) Dir(name string) string {
	if isInbox(name) {
		return s.Root
	}
	return filepath.Join(s.Root, "."+EncodeMUTF7(name))
}

// Mailbox opens an existing mailbox; INBOX is created when missing.
func (s *Store) Mailbox(name string) (*Mailbox, error) {
	if isInbox(name) {
		name = "INBOX"
		if err := s.makeFolder(s.Root, false); err != nil {
			return nil, err
		}
	} else {
		if err := ValidName(name); err != nil {
			return nil, err
		}
		fi, err := os.Stat(filepath.Join(s.Dir(name), "cur"))
		if err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%w: %s", ErrNoMailbox, name)
		}
	}
	return &Mailbox{Name: name, Dir: s.Dir(name), store: s}, nil
}

// Create makes a mailbox with its maildirfolder file.
func (s *Store) Create(name string) error {
	if isInbox(name) {
		return fmt.Errorf("%w: INBOX", ErrExists)
	}
	if err := ValidName(name); err != nil {
		return err
	}
	if err := s.makeFolder(s.Root, false); err != nil {
		return err
	}
	dir := s.Dir(name)
	if err := os.Mkdir(dir, 0700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, name)
		}
		return err
	}
	if s.opts.UID >= 0 || s.opts.GID >= 0 {
		if err := os.Lchown(dir, s.opts.UID, s.opts.GID); err != nil {
			return err
		}
	}
	return s.makeFolder(dir, true)
}

// makeFolder makes dir (when missing) and its cur/, new/ and tmp/, and
// for a folder other than INBOX its maildirfolder file.
func (s *Store) makeFolder(dir string, sub bool) error {
	for _, d := range []string{dir, filepath.Join(dir, "cur"), filepath.Join(dir, "new"), filepath.Join(dir, "tmp")} {
		if err := os.Mkdir(d, 0700); err == nil {
			if s.opts.UID >= 0 || s.opts.GID >= 0 {
				if err := os.Lchown(d, s.opts.UID, s.opts.GID); err != nil {
					return err
				}
			}
		} else if !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	if sub {
		f, err := os.OpenFile(filepath.Join(dir, "maildirfolder"), os.O_CREATE|os.O_WRONLY, 0600)
		if err != nil {
			return err
		}
		chown(int(f.Fd()), s.opts)
		f.Close()
	}
	return nil
}

// List returns INBOX and every mailbox folder, sorted.
func (s *Store) List() ([]string, error) {
	es, err := os.ReadDir(s.Root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	names := []string{"INBOX"}
	for _, e := range es {
		n := e.Name()
		if len(n) < 2 || n[0] != '.' || n[1] == '.' || !e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			continue
		}
		name, err := DecodeMUTF7(n[1:])
		if err != nil || ValidName(name) != nil {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names[1:])
	return names, nil
}

// Delete removes a mailbox and the mail in it; its children stay, as in
// Dovecot's Maildir++.
func (s *Store) Delete(name string) error {
	if isInbox(name) {
		return ErrInboxDelete
	}
	if err := ValidName(name); err != nil {
		return err
	}
	trash := filepath.Join(s.Root, fmt.Sprintf("..postdove-trash.%d.%d", os.Getpid(), counter.Add(1)))
	if err := os.Rename(s.Dir(name), trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNoMailbox, name)
		}
		return err
	}
	return os.RemoveAll(trash)
}

// Rename renames a mailbox and its children.
func (s *Store) Rename(from, to string) error {
	if isInbox(from) || isInbox(to) {
		return ErrInboxDelete
	}
	if err := ValidName(from); err != nil {
		return err
	}
	if err := ValidName(to); err != nil {
		return err
	}
	if _, err := os.Stat(s.Dir(to)); err == nil {
		return fmt.Errorf("%w: %s", ErrExists, to)
	}
	names, err := s.List()
	if err != nil {
		return err
	}
	if err := os.Rename(s.Dir(from), s.Dir(to)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNoMailbox, from)
		}
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, from+".") {
			if err := os.Rename(s.Dir(n), s.Dir(to+n[len(from):])); err != nil {
				return err
			}
		}
	}
	return nil
}

// UIDValidityName is Dovecot's record, in the Maildir root, of the last
// UIDVALIDITY given to a new folder (8 hex digits), with an empty file
// "dovecot-uidvalidity.<hex>" beside it naming the same value.
const UIDValidityName = "dovecot-uidvalidity"

// nextUIDValidity returns the UIDVALIDITY of a folder being given its
// first UIDs: the time, or one more than the last one handed out when
// that is not less, so a folder deleted and made again in the same second
// still gets a new one (RFC 3501 §2.3.1.1).
func (s *Store) nextUIDValidity() uint32 {
	now := uint32(s.opts.Now().Unix())
	var last uint32
	if b, err := os.ReadFile(filepath.Join(s.Root, UIDValidityName)); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 32); err == nil {
			last = uint32(n)
		}
	}
	next := now
	if last >= next {
		next = last + 1
	}
	hexv := func(v uint32) string { return fmt.Sprintf("%08x", v) }
	if writeAtomic(filepath.Join(s.Root, UIDValidityName), []byte(hexv(next)), s.opts) == nil {
		marker := filepath.Join(s.Root, UIDValidityName+"."+hexv(next))
		if last == 0 || os.Rename(filepath.Join(s.Root, UIDValidityName+"."+hexv(last)), marker) != nil {
			if f, err := os.OpenFile(marker, os.O_CREATE|os.O_WRONLY, 0444); err == nil {
				chown(int(f.Fd()), s.opts)
				f.Close()
			}
		}
	}
	return next
}

// lockRoot takes the dot lock of the subscriptions file.
func (s *Store) lockRoot() (func(), error) {
	if err := os.MkdirAll(s.Root, 0700); err != nil {
		return nil, err
	}
	l, err := lockFile(filepath.Join(s.Root, SubscriptionsName), s.opts)
	if err != nil {
		return nil, err
	}
	return l.unlock, nil
}

// Mailbox is one folder of a Store.
type Mailbox struct {
	Name  string
	Dir   string
	store *Store
}

// Message is one message of a mailbox as the last Sync saw it.
type Message struct {
	UID   uint32
	File  string    // the file's name in its folder
	Base  string    // File up to ":2,"
	Sub   string    // "new" or "cur"
	Info  string    // the letters after ":2,": flags DFRST, then keywords a–z
	Size  int64     // bytes on disk (S=)
	VSize int64     // bytes with CRLF line ends (W=), RFC822.SIZE
	Date  time.Time // INTERNALDATE: the file's modification time
	env   string    // the Envelope, encoded; "" when not known
}

// Path is the file relative to the mailbox folder.
func (m *Message) Path() string { return m.Sub + "/" + m.File }

// Flags returns the system flags as letters (D Draft, F Flagged, R
// Answered, S Seen, T Deleted).
func (m *Message) Flags() string {
	i := 0
	for i < len(m.Info) && m.Info[i] >= 'A' && m.Info[i] <= 'Z' {
		i++
	}
	return m.Info[:i]
}

// Recent reports whether the message is still in new/.
func (m *Message) Recent() bool { return m.Sub == "new" }

// Keywords returns the message's keywords by kw.
func (m *Message) Keywords(kw *Keywords) []string {
	var out []string
	for i := 0; i < len(m.Info); i++ {
		if c := m.Info[i]; c >= 'a' && c <= 'z' && kw[c-'a'] != "" {
			out = append(out, kw[c-'a'])
		}
	}
	return out
}

// Status is a mailbox at one Sync: UIDVALIDITY, UIDNEXT, the messages in
// UID order and the keywords their letters stand for.
type Status struct {
	UIDValidity uint32
	UIDNext     uint32
	GUID        string
	Messages    []Message
	Keywords    Keywords
	// Warnings are problems Sync repaired, for the caller's log
	// (Dovecot's "Broken file .../dovecot-uidlist line 3: ...").
	Warnings []string
}

// Find returns the message with uid, or nil.
func (st *Status) Find(uid uint32) *Message {
	i := sort.Search(len(st.Messages), func(i int) bool { return st.Messages[i].UID >= uid })
	if i < len(st.Messages) && st.Messages[i].UID == uid {
		return &st.Messages[i]
	}
	return nil
}

// parseName splits a Maildir file name into base and info (after ":2,").
func parseName(name string) (base, info string, ok bool) {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		if !strings.HasPrefix(name[i:], ":2,") {
			return name[:i], "", true
		}
		return name[:i], name[i+3:], true
	}
	return name, "", true
}

// sizesFromName reads ",S=" and ",W=" from a base name; -1 when absent.
func sizesFromName(base string) (s, w int64) {
	s, w = -1, -1
	for _, f := range strings.Split(base, ",")[1:] {
		if v, ok := strings.CutPrefix(f, "S="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				s = n
			}
		} else if v, ok := strings.CutPrefix(f, "W="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				w = n
			}
		}
	}
	return s, w
}

type fileEntry struct{ sub, name, info string }

// scan lists new/ and cur/, rescanning while cur/ changes under it (a
// rename there may hide a file from one readdir).
func (m *Mailbox) scan() (map[string]fileEntry, [2]int64, error) {
	var mt [2]int64
	for try := 0; ; try++ {
		before, err := dirTimes(m.Dir)
		if err != nil {
			return nil, mt, err
		}
		files := make(map[string]fileEntry)
		for _, sub := range []string{"new", "cur"} {
			names, err := readNames(filepath.Join(m.Dir, sub))
			if err != nil {
				return nil, mt, err
			}
			for _, n := range names {
				if n[0] == '.' {
					continue
				}
				base, info, _ := parseName(n)
				files[base] = fileEntry{sub, n, info}
			}
		}
		after, err := dirTimes(m.Dir)
		if err != nil {
			return nil, mt, err
		}
		if before == after || try == 5 {
			// The times from before the listing: a change during it
			// makes the index stale rather than wrong.
			return files, before, nil
		}
	}
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func dirTimes(dir string) ([2]int64, error) {
	var out [2]int64
	for i, sub := range []string{"new", "cur"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, sub), &st); err != nil {
			return out, err
		}
		out[i] = st.Mtim.Nano()
	}
	return out, nil
}

// Sync brings the mailbox up to date: files without a UID get the next
// ones in dovecot-uidlist (under its lock), and the result is the
// messages present, in UID order. The folder's postdove.index is used
// when it still matches the uidlist and the folders; when only part has
// changed (new records appended to the uidlist, one of new/ and cur/
// changed), just that part is read again; the index is then rewritten.
func (m *Mailbox) Sync() (*Status, error) {
	kw, err := readKeywords(m.Dir)
	if err != nil {
		return nil, err
	}
	idx, _ := readIndexFile(m.Dir)
	if idx != nil {
		if idx.fresh(m.Dir) {
			st := idx.status()
			st.Keywords = kw
			return st, nil
		}
		if st := m.syncFrom(idx); st != nil {
			st.Keywords = kw
			return st, nil
		}
	}
	u, broken, uv, err := readUidlistVersion(m.Dir)
	if err != nil {
		return nil, err
	}
	var warnings []string
	files, mtimes, err := m.scan()
	if err != nil {
		return nil, err
	}
	var missing []string
	for base := range files {
		if u == nil || u.UID(base) == 0 {
			missing = append(missing, base)
		}
	}
	if u == nil || len(missing) > 0 || broken != nil {
		if u, uv, broken, err = m.assign(missing); err != nil {
			return nil, err
		}
		if broken != nil {
			warnings = append(warnings, broken.Error())
		}
	}
	var prior map[string]*Message
	if idx != nil {
		prior = make(map[string]*Message, len(idx.msgs))
		for i := range idx.msgs {
			prior[idx.msgs[i].Base] = &idx.msgs[i]
		}
	}
	st := &Status{UIDValidity: u.UIDValidity, UIDNext: u.NextUID, GUID: u.GUID, Keywords: kw, Warnings: warnings}
	msgs := make([]Message, 0, len(files))
	for _, r := range u.Records {
		if fe, ok := files[r.Name]; ok {
			msgs = append(msgs, Message{UID: r.UID, File: fe.name, Base: r.Name, Sub: fe.sub, Info: fe.info})
		}
	}
	// The files are stated a few at once; those gone meanwhile drop out.
	gone := make([]bool, len(msgs))
	forEachFile(len(msgs), func(lo, hi int, _ *[]byte) {
		for i := lo; i < hi; i++ {
			gone[i] = !m.fill(&msgs[i], prior[msgs[i].Base])
		}
	})
	st.Messages = msgs[:0]
	for i := range msgs {
		if !gone[i] {
			st.Messages = append(st.Messages, msgs[i])
		}
	}
	writeIndexFile(m.Dir, uv, mtimes, st, m.store.opts)
	return st, nil
}

// fill sets a message's sizes, date and envelope from what an earlier
// Sync knew of the same file (p), else from its name and the file.
func (m *Mailbox) fill(msg *Message, p *Message) bool {
	if p != nil && p.UID == msg.UID {
		msg.Size, msg.VSize, msg.Date, msg.env = p.Size, p.VSize, p.Date, p.env
		return true
	}
	var fst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(m.Dir, msg.Path()), &fst); err != nil {
		return false // gone meanwhile
	}
	msg.Size, msg.VSize = sizesFromName(msg.Base)
	if msg.Size < 0 {
		msg.Size = fst.Size
	}
	if msg.VSize < 0 {
		var err error
		if msg.VSize, err = vsize(filepath.Join(m.Dir, msg.Path())); err != nil {
			return false
		}
	}
	msg.Date = time.Unix(0, fst.Mtim.Nano())
	// The header is read when the envelope is first asked for
	// (LoadEnvelopes), not here: opening a large folder lists it.
	msg.env = takeEnvelope(m.Dir, msg.Base)
	return true
}

// syncFrom brings an index up to date when the uidlist has only grown
// since and one of new/ and cur/ is as it was: it reads the new uidlist
// records and lists the changed folder only. It returns nil when it can
// not (then Sync does it all).
func (m *Mailbox) syncFrom(idx *index) *Status {
	data, uv, err := readUidlistData(m.Dir)
	if err != nil || data == nil || uv.key[0] != idx.uv.key[0] || uv.key[1] < idx.uv.key[1] ||
		crc32.ChecksumIEEE(data[:idx.uv.key[1]]) != idx.uv.crc {
		return nil
	}
	// The records appended since; a last line without its newline is
	// still being written.
	tail := data[idx.uv.key[1]:uv.key[1]]
	if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
		tail = tail[:i+1]
	} else {
		tail = nil
	}
	uv.key[1] = idx.uv.key[1] + int64(len(tail))
	uv.crc = crc32.ChecksumIEEE(data[:uv.key[1]])
	last := uint32(0)
	if n := len(idx.msgs); n > 0 {
		last = idx.msgs[n-1].UID
	}
	next := idx.uidNext
	added := map[string]uint32{}
	for _, l := range strings.Split(string(tail), "\n") {
		if l == "" {
			continue
		}
		r, err := parseRecord(l, 3, last)
		if err != nil {
			return nil
		}
		last, added[r.Name] = r.UID, r.UID
		if r.UID >= next {
			next = r.UID + 1
		}
	}
	mt, err := dirTimes(m.Dir)
	if err != nil {
		return nil
	}
	same := [2]bool{idx.mtimes[0] != 0 && mt[0] == idx.mtimes[0], idx.mtimes[1] != 0 && mt[1] == idx.mtimes[1]}
	if !same[0] && !same[1] {
		return nil
	}
	prior := make(map[string]*Message)
	msgs := make([]Message, 0, len(idx.msgs)+len(added)+16)
	for i := range idx.msgs {
		p := &idx.msgs[i]
		if p.Sub == "new" && same[0] || p.Sub == "cur" && same[1] {
			msgs = append(msgs, *p)
		} else {
			prior[p.Base] = p
		}
	}
	for i, sub := range []string{"new", "cur"} {
		if same[i] {
			continue
		}
		names, err := readNames(filepath.Join(m.Dir, sub))
		if err != nil {
			return nil
		}
		for _, n := range names {
			if n[0] == '.' {
				continue
			}
			base, info, _ := parseName(n)
			msg := Message{File: n, Base: base, Sub: sub, Info: info}
			p := prior[base]
			switch {
			case p != nil:
				msg.UID = p.UID
			case added[base] != 0:
				msg.UID = added[base]
			default:
				return nil // a file without a UID: Sync assigns one
			}
			if !m.fill(&msg, p) {
				continue
			}
			msgs = append(msgs, msg)
		}
	}
	// A folder that changed while it was listed is read again next time.
	if after, err := dirTimes(m.Dir); err != nil || after != mt {
		mt = [2]int64{}
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].UID < msgs[j].UID })
	for i := 1; i < len(msgs); i++ {
		if msgs[i].UID == msgs[i-1].UID {
			return nil // in both new/ and cur/ while moving
		}
	}
	st := &Status{UIDValidity: idx.uidValidity, UIDNext: next, GUID: idx.guid, Messages: msgs}
	writeIndexFile(m.Dir, uv, mt, st, m.store.opts)
	return st
}

// assign gives UIDs to the files names (base names) that the uidlist does
// not list yet, creating the uidlist when missing and writing it anew when
// damaged (as Dovecot does: the records before the damage are kept; a
// broken header means a new UIDVALIDITY). It returns the list, the
// version of its file that holds just that, and what was broken.
func (m *Mailbox) assign(names []string) (*Uidlist, uidlistVersion, error, error) {
	var none uidlistVersion
	l, err := lockUidlist(m.Dir, m.store.opts)
	if err != nil {
		return nil, none, nil, err
	}
	u, broken, _, err := readUidlistVersion(m.Dir)
	if err != nil {
		l.unlock()
		return nil, none, nil, err
	}
	if broken != nil {
		// The names the caller saw may be listed after the damage.
		files, _, err := m.scan()
		if err != nil {
			l.unlock()
			return nil, none, nil, err
		}
		names = names[:0]
		for base := range files {
			names = append(names, base)
		}
	}
	created := u == nil || broken != nil || u.Version != 3
	if u == nil {
		u = newUidlist(m.store.nextUIDValidity())
	}
	sort.Slice(names, func(i, j int) bool { return nameLess(names[i], names[j]) })
	var add []UidRecord
	for _, n := range names {
		if u.UID(n) != 0 {
			continue
		}
		r := UidRecord{UID: u.NextUID, Name: n}
		u.add(r)
		add = append(add, r)
	}
	if created {
		uv, err := l.replace(m.Dir, u)
		return u, uv, broken, err
	}
	defer l.unlock()
	if len(add) > 0 {
		if err := appendRecords(m.Dir, add); err != nil {
			return nil, none, nil, err
		}
	}
	// Nobody else writes the list while the lock is held.
	_, uv, err := readUidlistData(m.Dir)
	return u, uv, nil, err
}

// DeliverOptions are the flags, keywords and date of a saved message.
type DeliverOptions struct {
	Flags    string   // system flag letters (DFRST)
	Keywords []string // IMAP keywords
	Date     time.Time
}

// Deliver saves the message read from r (LF line ends are stored) and
// gives it the next UID, which it returns with the file's name. The file
// and its folder are fsynced first; without flags or keywords it goes to
// new/, else to cur/.
func (m *Mailbox) Deliver(r io.Reader, do DeliverOptions) (uint32, string, error) {
	flags, err := sortFlags(do.Flags)
	if err != nil || strings.IndexFunc(flags, func(c rune) bool { return !strings.ContainsRune("DFRST", c) }) >= 0 {
		return 0, "", &Error{Dir: m.Dir, Reason: fmt.Sprintf("flags %q", do.Flags), Err: errFlags}
	}
	opts := m.store.opts
	fds := map[string]int{}
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	for _, sub := range []string{"tmp", "new", "cur"} {
		fd, err := syscall.Open(filepath.Join(m.Dir, sub), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return 0, "", &Error{Dir: m.Dir, Reason: "open " + sub, Err: err}
		}
		fds[sub] = fd
	}
	var uid uint32
	var destSub string
	base := BaseName(opts.Now(), os.Getpid(), counter.Add(1), opts.Hostname)
	var hdr headerCapture
	name, err := store(m.Dir, fds["tmp"], io.TeeReader(r, &hdr), opts, base, func(f *os.File, base string, st lineconv.Stats) (int, string, error) {
		if !do.Date.IsZero() {
			if err := os.Chtimes(filepath.Join(m.Dir, "tmp", base), do.Date, do.Date); err != nil {
				return -1, "", err
			}
		}
		var (
			name string
			err  error
		)
		full := fmt.Sprintf("%s,S=%d,W=%d", base, st.Bytes, st.Bytes+st.BareLF)
		e := parseEnvelope(hdr.buf)
		rememberEnvelope(m.Dir, full, encodeEnvelope(&e))
		uid, name, destSub, err = m.commit(full, flags, do.Keywords, func(sub, name string) error {
			return linkAt(fds["tmp"], base, fds[sub], name)
		})
		if err != nil {
			return -1, "", err
		}
		return fds[destSub], name, nil
	})
	if err != nil {
		return 0, "", err
	}
	if err := syscall.Fsync(fds[destSub]); err != nil {
		return 0, "", &Error{Dir: m.Dir, Reason: "fsync " + destSub, Err: err}
	}
	return uid, filepath.Join(m.Dir, destSub, name), nil
}

// commit names a complete message (final base name full, flags and
// keywords), links it into new/ or cur/ with link under the uidlist lock
// and appends its UID there.
func (m *Mailbox) commit(full, flags string, keywords []string, link func(sub, name string) error) (uint32, string, string, error) {
	l, err := lockUidlist(m.Dir, m.store.opts)
	if err != nil {
		return 0, "", "", err
	}
	// The next UID from the list's first and last lines; the whole list
	// is read only when those do not tell.
	next, quick := uidlistNext(m.Dir)
	var u *Uidlist
	var broken error
	if !quick {
		if u, broken, err = readUidlist(m.Dir); err != nil {
			l.unlock()
			return 0, "", "", err
		}
	}
	info := flags
	if len(keywords) > 0 {
		kw, err := readKeywords(m.Dir)
		if err != nil {
			l.unlock()
			return 0, "", "", err
		}
		letters, added, err := kw.letters(keywords)
		if err != nil {
			l.unlock()
			return 0, "", "", err
		}
		if added {
			if err := writeKeywords(m.Dir, &kw, m.store.opts); err != nil {
				l.unlock()
				return 0, "", "", err
			}
		}
		info, _ = sortFlags(flags + letters)
	}
	sub, name := "new", full
	if info != "" {
		sub, name = "cur", full+":2,"+info
	}
	if err := link(sub, name); err != nil {
		l.unlock()
		return 0, "", "", err
	}
	if quick {
		r := UidRecord{UID: next, Name: full}
		err := appendRecords(m.Dir, []UidRecord{r})
		l.unlock()
		if err != nil {
			os.Remove(filepath.Join(m.Dir, sub, name))
			return 0, "", "", err
		}
		return r.UID, name, sub, nil
	}
	created := u == nil || broken != nil || u.Version != 3
	if u == nil {
		u = newUidlist(m.store.nextUIDValidity())
	}
	r := UidRecord{UID: u.NextUID, Name: full}
	if created {
		u.add(r)
		_, err = l.replace(m.Dir, u)
	} else {
		err = appendRecords(m.Dir, []UidRecord{r})
		l.unlock()
	}
	if err != nil {
		os.Remove(filepath.Join(m.Dir, sub, name))
		return 0, "", "", err
	}
	return r.UID, name, sub, nil
}

// Open opens the message file with uid (following it through renames by
// other processes).
func (m *Mailbox) Open(uid uint32) (*os.File, *Message, error) {
	for try := 0; try < 5; try++ {
		st, err := m.Sync()
		if err != nil {
			return nil, nil, err
		}
		msg := st.Find(uid)
		if msg == nil {
			return nil, nil, ErrNoMessage
		}
		f, err := os.Open(filepath.Join(m.Dir, msg.Path()))
		if err == nil {
			return f, msg, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, nil, err
		}
		m.invalidate()
	}
	return nil, nil, ErrNoMessage
}

// invalidate drops the index so the next Sync rescans.
func (m *Mailbox) invalidate() { os.Remove(filepath.Join(m.Dir, IndexName)) }

// FlagChange is the new flags (letters DFRST) and keywords of one message.
type FlagChange struct {
	UID      uint32
	Flags    string
	Keywords []string
}

// SetFlags replaces the flags and keywords of messages by renaming their
// files; a file moves to cur/ as Dovecot moves a message an IMAP client
// has seen. Keywords new to the folder are added to dovecot-keywords.
func (m *Mailbox) SetFlags(changes ...FlagChange) error {
	var all []string
	for _, c := range changes {
		if f, err := sortFlags(c.Flags); err != nil || strings.IndexFunc(f, func(c rune) bool { return !strings.ContainsRune("DFRST", c) }) >= 0 {
			return &Error{Dir: m.Dir, Reason: fmt.Sprintf("flags %q", c.Flags), Err: errFlags}
		}
		all = append(all, c.Keywords...)
	}
	kw, err := readKeywords(m.Dir)
	if err != nil {
		return err
	}
	if _, added, err := kw.letters(all); err != nil {
		return err
	} else if added {
		l, err := lockUidlist(m.Dir, m.store.opts)
		if err != nil {
			return err
		}
		kw, err = readKeywords(m.Dir)
		if err == nil {
			if _, added, err = kw.letters(all); err == nil && added {
				err = writeKeywords(m.Dir, &kw, m.store.opts)
			}
		}
		l.unlock()
		if err != nil {
			return err
		}
	}
	st, err := m.Sync()
	if err != nil {
		return err
	}
	for _, c := range changes {
		letters, _, _ := kw.letters(c.Keywords)
		info, _ := sortFlags(c.Flags + letters)
		for try := 0; ; try++ {
			if try > 0 {
				m.invalidate()
				if st, err = m.Sync(); err != nil {
					return err
				}
			}
			msg := st.Find(c.UID)
			if msg == nil {
				return fmt.Errorf("%w: UID %d", ErrNoMessage, c.UID)
			}
			name := msg.Base + ":2," + info
			if msg.Sub == "cur" && msg.File == name {
				break
			}
			err := os.Rename(filepath.Join(m.Dir, msg.Path()), filepath.Join(m.Dir, "cur", name))
			if err == nil {
				msg.Sub, msg.File, msg.Info = "cur", name, info
				break
			}
			if !errors.Is(err, os.ErrNotExist) || try == 4 {
				return err
			}
		}
	}
	return nil
}

// Expunge removes the messages with uids and their uidlist records.
func (m *Mailbox) Expunge(uids ...uint32) error {
	gone := map[uint32]bool{}
	st, err := m.Sync()
	if err != nil {
		return err
	}
	for _, uid := range uids {
		for try := 0; try < 5; try++ {
			if try > 0 {
				if st, err = m.Sync(); err != nil {
					return err
				}
			}
			msg := st.Find(uid)
			if msg == nil {
				break
			}
			err := os.Remove(filepath.Join(m.Dir, msg.Path()))
			if err == nil {
				gone[uid] = true
				break
			}
			if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			m.invalidate()
		}
	}
	if len(gone) == 0 {
		return nil
	}
	l, err := lockUidlist(m.Dir, m.store.opts)
	if err != nil {
		return err
	}
	u, _, err := readUidlist(m.Dir)
	if err != nil || u == nil {
		l.unlock()
		return err
	}
	keep := u.Records[:0]
	for _, r := range u.Records {
		if !gone[r.UID] {
			keep = append(keep, r)
		}
	}
	u.Records, u.byName = keep, nil
	_, err = l.replace(m.Dir, u)
	return err
}

// Copy copies the messages with uids into dst (a hard link where the
// file system allows) with their flags and keywords, and returns their
// new UIDs in dst.
func (m *Mailbox) Copy(dst *Mailbox, uids ...uint32) ([]uint32, error) {
	st, err := m.Sync()
	if err != nil {
		return nil, err
	}
	opts := dst.store.opts
	var out []uint32
	for _, uid := range uids {
		msg := st.Find(uid)
		if msg == nil {
			return out, ErrNoMessage
		}
		base := BaseName(opts.Now(), os.Getpid(), counter.Add(1), opts.Hostname)
		tmp := filepath.Join(dst.Dir, "tmp", base)
		if err := os.Link(filepath.Join(m.Dir, msg.Path()), tmp); err != nil {
			f, oerr := m.OpenMessage(msg)
			if oerr != nil {
				return out, oerr
			}
			err = copyFile(tmp, f, opts)
			f.Close()
			if err != nil {
				return out, err
			}
		}
		full := base
		if msg.Size >= 0 {
			full += ",S=" + strconv.FormatInt(msg.Size, 10)
		}
		if msg.VSize >= 0 {
			full += ",W=" + strconv.FormatInt(msg.VSize, 10)
		}
		rememberEnvelope(dst.Dir, full, msg.env)
		uid, _, _, err := dst.commit(full, msg.Flags(), msg.Keywords(&st.Keywords), func(sub, name string) error {
			return os.Link(tmp, filepath.Join(dst.Dir, sub, name))
		})
		os.Remove(tmp)
		if err != nil {
			return out, err
		}
		out = append(out, uid)
	}
	return out, nil
}

// OpenMessage opens the file of a message from an earlier Sync, following
// it through renames by other processes.
func (m *Mailbox) OpenMessage(msg *Message) (*os.File, error) {
	f, err := os.Open(filepath.Join(m.Dir, msg.Path()))
	if errors.Is(err, os.ErrNotExist) {
		f, _, err = m.Open(msg.UID)
	}
	return f, err
}

func copyFile(path string, src io.Reader, opts Options) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, opts.Mode.Perm())
	if err != nil {
		return err
	}
	chown(int(f.Fd()), opts)
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// Move copies the messages into dst, then expunges them here.
func (m *Mailbox) Move(dst *Mailbox, uids ...uint32) ([]uint32, error) {
	out, err := m.Copy(dst, uids...)
	if err != nil {
		return out, err
	}
	return out, m.Expunge(uids...)
}

// statKey identifies a file's version: inode, size and modification time.
func statKey(path string) [3]int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return [3]int64{}
	}
	return [3]int64{int64(st.Ino), st.Size, st.Mtim.Nano()}
}

// vsize returns the size of a file with every bare LF counted as CRLF.
func vsize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := lineconv.Copy(io.Discard, f, lineconv.Options{})
	return st.Bytes + st.BareLF, err
}

// nameLess orders new files for their UIDs as Dovecot does: by the time
// in the name (seconds, then the microseconds after ".M"), both as
// numbers, then by the whole name.
func nameLess(a, b string) bool {
	as, arest := leadingNumber(a)
	bs, brest := leadingNumber(b)
	if as != bs {
		return as < bs
	}
	if strings.HasPrefix(arest, ".M") && strings.HasPrefix(brest, ".M") {
		au, _ := leadingNumber(arest[2:])
		bu, _ := leadingNumber(brest[2:])
		if au != bu {
			return au < bu
		}
	}
	return a < b
}

// leadingNumber is the value of the digits s starts with (saturating)
// and what follows them.
func leadingNumber(s string) (uint64, string) {
	var n uint64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n < 1<<59 {
			n = n*10 + uint64(s[i]-'0')
		}
	}
	return n, s[i:]
}
