package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Status is a recipient's one-byte delivery state in a queue file.
type Status byte

// Recipient states.
const (
	Pending   Status = '-' // not yet tried
	Delivered Status = 'D' // done: delivered
	Bounced   Status = 'B' // done: returned to the sender
	TempFail  Status = 'T' // last attempt deferred; still to do
)

// Done reports whether no more delivery attempts are due.
func (s Status) Done() bool { return s == Delivered || s == Bounced }

func (s Status) valid() bool {
	return s == Pending || s == Delivered || s == Bounced || s == TempFail
}

// Recipient is one envelope recipient.
type Recipient struct {
	Address string // the recipient as it will be delivered
	Orig    string // the original recipient (before rewriting), or ""
	// Notify and ORCPT are the recipient's RFC 3461 NOTIFY and ORCPT
	// parameters ("SUCCESS,DELAY", "rfc822;user@example.com"), "" when
	// none were given.
	Notify string
	ORCPT  string
	Status Status
	offset int64 // of the status byte in the file
}

// Well-known attribute names.
const (
	AttrMessageID = "message_id"
	AttrLogIdent  = "log_ident"
	// AttrRewriteContext marks a file cleanup wrote ("local" or "remote").
	AttrRewriteContext = "rewrite_context"
	// AttrTraceFlags holds the message's delivery request flags:
	// TraceVerify for a message sendmail -bv submitted.
	AttrTraceFlags = "trace_flags"

	// What the SMTP server records of the message: the RFC 3461 ENVID
	// and RET ("FULL" or "HDRS"), RFC 6531 SMTPUTF8 ("1" when asked
	// for) and RFC 6152 BODY ("7BIT" or "8BITMIME").
	AttrENVID    = "envid"
	AttrRET      = "ret"
	AttrSMTPUTF8 = "smtputf8"
	AttrBody     = "body"
	// What it records of the client: its name, address, HELO, protocol
	// (SMTP, ESMTP ...) and SASL user name, with Postfix's names.
	AttrClientName = "client_name"
	AttrClientAddr = "client_address"
	AttrHELO       = "helo_name"
	AttrProtocol   = "protocol_name"
	AttrSASLUser   = "sasl_username"

	// AttrFail makes every recipient fail with its text ("5.4.0 too many
	// hops"), through the error transport: a message cleanup accepted but
	// will not deliver, whose sender must still be told.
	AttrFail = "fail"
)

// TraceVerify (in AttrTraceFlags) asks for a report of what delivery would
// do, sent to the sender, instead of delivery (Postfix's sendmail -bv).
const TraceVerify = "verify"

// Verify reports whether m asks for a delivery status report instead of
// delivery.
func (m *Message) Verify() bool { return m.Attrs[AttrTraceFlags] == TraceVerify }

// Message is a queue file's envelope.
type Message struct {
	ID         string // queue ID (the file name)
	Queue      string // the queue it was read from
	Arrival    time.Time
	Sender     string // "" is the null sender
	Recipients []Recipient
	Attrs      map[string]string
	Size       int64 // content length in bytes
	Offset     int64 // where the content starts in the file
	// MessageSize is the size Postfix would report for the message (qmgr's
	// "size=", mailq): the content counted as queue file records (see
	// RecordSize). Files without it report Size.
	MessageSize int64
	// ForcedExpire is set by postsuper -e/-f: qmgr returns the message
	// to its sender at the next attempt. Like Postfix, it is kept in the
	// file's group-execute mode bit.
	ForcedExpire bool
}

// CorruptError is a queue file the reader cannot accept. The caller moves
// it to the corrupt queue and logs the reason.
type CorruptError struct {
	Path   string
	Line   int // 0 when not about one envelope line
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: %s", e.Path, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Reason)
}

const (
	magic      = "postdove-queue 1"
	maxEnvLine = 1 << 20 // 1 MB: longer envelope lines are corrupt
	numWidth   = 16
)

// Writer writes one new queue file. Write appends content; Commit makes
// it a queued message; Abort throws it away.
type Writer struct {
	q          *Queue
	name       string
	f          *os.File
	buf        *bufio.Writer // content on its way to f
	tmp        string
	sizeOffset int64 // of the content line's numbers
	content    int64 // offset of the content
	size       int64
	records    *RecordSize
	done       bool
	inode      uint64
	id         string // the queue ID Commit links the file to
}

// syncEntry fsyncs the directory holding a new queue file. The set-gid
// postdrop may write into maildrop/ (mode 0730) but not open it for
// reading; there the file's own fsync, made after the link changed its
// inode, is what carried the entry into the journal (ext4, xfs).
func syncEntry(dir string) error {
	err := syncDir(dir)
	if err != nil && errors.Is(err, os.ErrPermission) {
		return nil
	}
	return err
}

// ID is the queue ID the message will have once committed, known from
// Create on (Postfix's IDs are made from the file's inode), so that cleanup
// can name it in the Received: and Message-Id: headers it writes.
func (w *Writer) ID() string { return w.id }

func (w *Writer) newID(now time.Time) string {
	if w.q.LongIDs {
		return LongID(now, w.inode)
	}
	return ShortID(now, w.inode)
}

// Create starts a new message in queue name with envelope m (its ID,
// Queue, Size and Offset are ignored; a zero Arrival means now). The
// recipients are fixed here: content follows with Write.
func (q *Queue) Create(name string, m *Message) (*Writer, error) {
	env, sizeOff, err := encodeEnvelope(m)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(q.Dir, name)
	mode := os.FileMode(0600)
	if name == Maildrop {
		mode = 0644 // read by pickup as the mail owner
	}
	var f *os.File
	var tmp string
	for i := 0; ; i++ {
		tmp = filepath.Join(dir, fmt.Sprintf("tmp.%d.%d", os.Getpid(), time.Now().UnixNano()+int64(i)))
		f, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if err == nil {
			break
		}
		if !os.IsExist(err) || i > 100 {
			return nil, fmt.Errorf("create file %s: %w", tmp, unwrapPath(err))
		}
	}
	w := &Writer{q: q, name: name, f: f, tmp: tmp, sizeOffset: int64(sizeOff), content: int64(len(env)), records: NewRecordSize(q.LineLimit)}
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			w.inode = st.Ino
		}
	}
	w.id = w.newID(time.Now())
	if name == Maildrop {
		// Whatever the submitter's umask, pickup (mail_owner) must read it.
		if err := f.Chmod(mode); err != nil {
			w.Abort()
			return nil, fmt.Errorf("chmod file %s: %w", tmp, unwrapPath(err))
		}
	}
	if q.Owner != nil {
		// A root process (local forwarding mail) hands the file to
		// mail_owner before it becomes visible under its queue ID.
		if err := f.Chown(q.Owner[0], q.Owner[1]); err != nil {
			w.Abort()
			return nil, fmt.Errorf("chown file %s: %w", tmp, unwrapPath(err))
		}
	}
	if _, err := f.Write(env); err != nil {
		w.Abort()
		return nil, fmt.Errorf("write file %s: %w", tmp, unwrapPath(err))
	}
	return w, nil
}

// SetEnvelope replaces the envelope given to Create, before any content
// is written: smtpd's cleanup makes the file (and so its queue ID) at the
// first accepted recipient, as Postfix does, and learns the rest of the
// envelope later.
func (w *Writer) SetEnvelope(m *Message) error {
	if w.done || w.buf != nil {
		return errors.New("queue file: envelope after content")
	}
	env, sizeOff, err := encodeEnvelope(m)
	if err != nil {
		return err
	}
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate file %s: %w", w.tmp, unwrapPath(err))
	}
	if _, err := w.f.WriteAt(env, 0); err != nil {
		return fmt.Errorf("write file %s: %w", w.tmp, unwrapPath(err))
	}
	if _, err := w.f.Seek(int64(len(env)), io.SeekStart); err != nil {
		return fmt.Errorf("seek file %s: %w", w.tmp, unwrapPath(err))
	}
	w.sizeOffset, w.content = int64(sizeOff), int64(len(env))
	return nil
}

// SetQueue makes Commit put the file in queue name (cleanup's HOLD).
func (w *Writer) SetQueue(name string) { w.name = name }

// Write appends message content.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("queue file already closed")
	}
	if w.buf == nil {
		w.buf = bufio.NewWriterSize(w.f, 64<<10)
	}
	n, err := w.buf.Write(p)
	w.size += int64(n)
	w.records.Write(p[:n])
	if err != nil {
		return n, fmt.Errorf("write file %s: %w", w.tmp, unwrapPath(err))
	}
	return n, nil
}

// ReadFrom appends all of r as content.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{w}, r)
}

// Commit finishes the file: it records the content size, fsyncs the file,
// gives it its queue ID and fsyncs the directory. Only when Commit
// returns nil is the message queued.
func (w *Writer) Commit() (string, error) { return w.commit(true) }

// CommitOrdered is Commit without the directory fsync, for a copy of a
// message whose original stays durable until after this one is (see the
// package documentation).
func (w *Writer) CommitOrdered() (string, error) { return w.commit(false) }

func (w *Writer) commit(syncDirectory bool) (string, error) {
	if w.done {
		return "", errors.New("queue file already closed")
	}
	defer w.Abort()
	if w.buf != nil {
		if err := w.buf.Flush(); err != nil {
			return "", fmt.Errorf("write file %s: %w", w.tmp, unwrapPath(err))
		}
	}
	nums := fmt.Sprintf("%0*d %0*d %0*d", numWidth, w.content, numWidth, w.size, numWidth, w.records.Size())
	if _, err := w.f.WriteAt([]byte(nums), w.sizeOffset); err != nil {
		return "", fmt.Errorf("write file %s: %w", w.tmp, unwrapPath(err))
	}
	// The file is linked to its queue ID first and fsynced after: one
	// fsync then makes the content and the new name durable together
	// (the link dirtied the inode), and the directory fsync that follows
	// finds little left to do. A crash before it leaves either no
	// message or a complete one (data is written before the metadata
	// that names it; the reader checks the content length), and nothing
	// was acknowledged yet. The removal of the temporary name needs no
	// fsync: a leftover tmp.* is never taken for a message.
	for tries := 0; ; tries++ {
		id := w.id
		if tries > 0 {
			id = w.newID(time.Now())
		}
		if err := w.q.mkSubdir(w.name, id); err != nil {
			return "", err
		}
		final := w.q.Path(w.name, id)
		err := os.Link(w.tmp, final)
		if err == nil {
			if err := os.Remove(w.tmp); err != nil {
				return "", fmt.Errorf("remove %s: %w", w.tmp, unwrapPath(err))
			}
			w.tmp = final // Abort removes it if the fsyncs fail
			if err := w.f.Sync(); err != nil {
				return "", fmt.Errorf("fsync file %s: %w", final, unwrapPath(err))
			}
			if syncDirectory {
				if err := syncEntry(filepath.Dir(final)); err != nil {
					return "", err
				}
			}
			w.tmp = ""
			return id, nil
		}
		if !os.IsExist(err) || tries > 1000 {
			return "", fmt.Errorf("link %s to %s: %w", w.tmp, final, unwrapPath(err))
		}
		time.Sleep(time.Microsecond) // same ID: wait for the clock to move
	}
}

// Abort discards an uncommitted file. It is safe after Commit.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	if w.tmp != "" {
		os.Remove(w.tmp)
	}
}

// Enqueue writes a whole message to queue name and returns its queue ID.
func (q *Queue) Enqueue(name string, m *Message, content io.Reader) (string, error) {
	w, err := q.Create(name, m)
	if err != nil {
		return "", err
	}
	if _, err := w.ReadFrom(content); err != nil {
		w.Abort()
		return "", err
	}
	return w.Commit()
}

// encodeEnvelope returns the envelope text and the offset of the content
// line's numbers in it.
func encodeEnvelope(m *Message) ([]byte, int, error) {
	var b bytes.Buffer
	arrival := m.Arrival
	if arrival.IsZero() {
		arrival = time.Now()
	}
	fmt.Fprintf(&b, "%s\narrival %d %d\n", magic, arrival.Unix(), arrival.Nanosecond()/1000)
	b.WriteString("content ")
	sizeOff := b.Len()
	fmt.Fprintf(&b, "%0*d %0*d %0*d\n", numWidth, 0, numWidth, 0, numWidth, 0)
	fmt.Fprintf(&b, "sender %s\n", strconv.Quote(m.Sender))
	keys := make([]string, 0, len(m.Attrs))
	for k := range m.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "attr %s %s\n", strconv.Quote(k), strconv.Quote(m.Attrs[k]))
	}
	if len(m.Recipients) == 0 {
		return nil, 0, errors.New("queue file: no recipients")
	}
	for _, r := range m.Recipients {
		st := r.Status
		if st == 0 {
			st = Pending
		}
		if !st.valid() {
			return nil, 0, fmt.Errorf("queue file: bad recipient status %q", byte(st))
		}
		fmt.Fprintf(&b, "rcpt %c %s %s", byte(st), strconv.Quote(r.Address), strconv.Quote(r.Orig))
		if r.Notify != "" || r.ORCPT != "" {
			// Files written before these were recorded have two
			// fields: both forms are read.
			fmt.Fprintf(&b, " %s %s", strconv.Quote(r.Notify), strconv.Quote(r.ORCPT))
		}
		b.WriteByte('\n')
	}
	b.WriteString("end\n")
	return b.Bytes(), sizeOff, nil
}

// File is an open queue file.
type File struct {
	Message
	Path string
	f    *os.File
}

// Open opens message id in queue name and reads its envelope. A file
// that does not parse gives a *CorruptError.
func (q *Queue) Open(name, id string) (*File, error) {
	p, err := q.locate(name, id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		if os.IsPermission(err) {
			f, err = os.Open(p)
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", p, unwrapPath(err))
		}
	}
	m, err := readEnvelope(f, p)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.ID, m.Queue = id, name
	return &File{Message: *m, Path: p, f: f}, nil
}

// ReadEnvelope returns the envelope of message id in queue name.
func (q *Queue) ReadEnvelope(name, id string) (*Message, error) {
	f, err := q.Open(name, id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := f.Message
	return &m, nil
}

// Content returns a reader of the message content.
func (f *File) Content() io.Reader {
	return io.NewSectionReader(f.f, f.Offset, f.Size)
}

// SetStatus records recipient i's new status in place (one pwrite).
func (f *File) SetStatus(i int, st Status) error {
	if i < 0 || i >= len(f.Recipients) {
		return fmt.Errorf("%s: no recipient #%d", f.Path, i)
	}
	if !st.valid() {
		return fmt.Errorf("bad recipient status %q", byte(st))
	}
	if _, err := f.f.WriteAt([]byte{byte(st)}, f.Recipients[i].offset); err != nil {
		return fmt.Errorf("write file %s: %w", f.Path, unwrapPath(err))
	}
	f.Recipients[i].Status = st
	return nil
}

// Sync makes the recipients' statuses durable. Without it a status reaches
// the disk with the next journal commit: a crash of the machine (not of the
// mail system) before then can only make a recipient be delivered again,
// never lost, the same window Postfix's queue manager has.
func (f *File) Sync() error {
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("fsync file %s: %w", f.Path, unwrapPath(err))
	}
	return nil
}

const expireBit = 0010

// SetForcedExpire marks (or unmarks) message id in queue name for forced
// expiration.
func (q *Queue) SetForcedExpire(name, id string, on bool) error {
	p, err := q.locate(name, id)
	if err != nil {
		return err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("stat %s: %w", p, unwrapPath(err))
	}
	mode := fi.Mode().Perm() &^ expireBit
	if on {
		mode |= expireBit
	}
	if err := os.Chmod(p, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", p, unwrapPath(err))
	}
	return nil
}

// Touch sets the modification time of message id in queue name. For the
// deferred queue, as in Postfix, that time is when the next delivery
// attempt is due: postqueue -i/-s touch a message to make it due now.
func (q *Queue) Touch(name, id string, t time.Time) error {
	p, err := q.locate(name, id)
	if err != nil {
		return err
	}
	if err := os.Chtimes(p, t, t); err != nil {
		return fmt.Errorf("utime %s: %w", p, unwrapPath(err))
	}
	return nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

func readEnvelope(f *os.File, path string) (*Message, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fstat %s: %w", path, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, &CorruptError{Path: path, Reason: "not a regular file"}
	}
	m, err := parseEnvelope(f, fi.Size(), path)
	if err != nil {
		return nil, err
	}
	m.ForcedExpire = fi.Mode()&expireBit != 0
	return m, nil
}

// parseEnvelope reads the envelope of the queue file of size bytes in r.
// Whatever the bytes, it returns a Message whose content lies within the
// file, with an arrival time, a sender and at least one recipient with a
// valid status, or a *CorruptError naming path.
func parseEnvelope(r io.ReaderAt, size int64, path string) (*Message, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10)
	m := &Message{Attrs: map[string]string{}}
	var pos int64
	bad := func(line int, format string, a ...any) error {
		return &CorruptError{Path: path, Line: line, Reason: fmt.Sprintf(format, a...)}
	}
	seen := map[string]bool{}
	for line := 1; ; line++ {
		raw, err := readLine(br)
		if err == errLong {
			return nil, bad(line, "envelope line too long")
		}
		if err != nil {
			return nil, bad(0, "premature end of file")
		}
		start := pos
		pos += int64(len(raw)) + 1
		text := string(raw)
		if line == 1 {
			if text != magic {
				return nil, bad(line, "not a postdove queue file")
			}
			continue
		}
		key, rest, _ := strings.Cut(text, " ")
		switch key {
		case "arrival", "content", "sender":
			if seen[key] {
				return nil, bad(line, "duplicate %s record", key)
			}
			seen[key] = true
		}
		switch key {
		case "arrival":
			sec, usec, ok := twoInts(rest)
			if !ok || sec < 0 || usec < 0 || usec > 999999 {
				return nil, bad(line, "bad arrival time")
			}
			m.Arrival = time.Unix(sec, usec*1000)
		case "content":
			// Fixed-width numbers: three of them, or two in files
			// written before the message size was recorded.
			nums, ok := fixedInts(rest)
			switch {
			case ok && len(nums) == 2:
				m.Offset, m.Size, m.MessageSize = nums[0], nums[1], nums[1]
			case ok && len(nums) == 3:
				m.Offset, m.Size, m.MessageSize = nums[0], nums[1], nums[2]
			default:
				return nil, bad(line, "bad content line")
			}
		case "sender":
			s, err := strconv.Unquote(rest)
			if err != nil || !strings.HasPrefix(rest, `"`) {
				return nil, bad(line, "bad sender")
			}
			m.Sender = s
		case "attr":
			f, err := unquoteFields(rest, 2)
			if err != nil {
				return nil, bad(line, "bad attribute")
			}
			m.Attrs[f[0]] = f[1]
		case "rcpt":
			if len(rest) < 2 || rest[1] != ' ' || !Status(rest[0]).valid() {
				return nil, bad(line, "bad recipient status")
			}
			f, err := unquoteFields(rest[2:], 2)
			if err != nil {
				f, err = unquoteFields(rest[2:], 4)
			}
			if err != nil {
				return nil, bad(line, "bad recipient")
			}
			r := Recipient{Address: f[0], Orig: f[1], Status: Status(rest[0]), offset: start + 5}
			if len(f) == 4 {
				r.Notify, r.ORCPT = f[2], f[3]
			}
			m.Recipients = append(m.Recipients, r)
		case "end":
			switch {
			case !seen["arrival"]:
				return nil, bad(0, "no arrival time")
			case !seen["content"]:
				return nil, bad(0, "no content line")
			case !seen["sender"]:
				return nil, bad(0, "no sender")
			case len(m.Recipients) == 0:
				return nil, bad(0, "no recipients")
			case m.Offset != pos:
				return nil, bad(0, "content offset %d, expected %d (file not committed?)", m.Offset, pos)
			case m.Offset+m.Size != size:
				return nil, bad(0, "file size %d, expected %d (truncated?)", size, m.Offset+m.Size)
			}
			return m, nil
		default:
			return nil, bad(line, "unknown envelope record %q", key)
		}
	}
}

// twoInts parses "SEC USEC": two decimal numbers separated by one space.
func twoInts(s string) (a, b int64, ok bool) {
	x, y, found := strings.Cut(s, " ")
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseInt(x, 10, 64)
	b, err2 := strconv.ParseInt(y, 10, 64)
	return a, b, err1 == nil && err2 == nil
}

// fixedInts parses the content line's numbers: each numWidth decimal
// digits, separated by one space.
func fixedInts(s string) ([]int64, bool) {
	var out []int64
	for _, f := range strings.Split(s, " ") {
		if len(f) != numWidth || strings.Trim(f, "0123456789") != "" {
			return nil, false
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

var errLong = errors.New("line too long")

func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxEnvLine {
			return nil, errLong
		}
		if err == nil {
			return buf[:len(buf)-1], nil
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
	}
}

// unquoteFields splits s into n space-separated Go-quoted strings.
func unquoteFields(s string, n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, err
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		s = s[len(q):]
		if i < n-1 {
			if !strings.HasPrefix(s, " ") {
				return nil, errors.New("missing field")
			}
			s = s[1:]
		}
	}
	if s != "" {
		return nil, errors.New("trailing junk")
	}
	return out, nil
}
