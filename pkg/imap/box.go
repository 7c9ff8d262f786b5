package imap

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/sys/unix"

	"postdove/pkg/maildir"
)

// box is the state of one mailbox shared by the sessions of a Server that
// have it selected: the messages in server sequence order as of the last
// Sync, and go-imap's tracker that turns changes into each session's
// updates.
type box struct {
	srv     *Server
	mb      *maildir.Mailbox
	tracker *imapserver.MailboxTracker

	mu          sync.Mutex
	msgs        []maildir.Message
	keywords    maildir.Keywords
	uidValidity uint32
	uidNext     uint32
	refs        int // guarded by srv.mu
	stop        func()
}

// acquire returns the shared state of mb, opening it on first use.
func (s *Server) acquire(mb *maildir.Mailbox) (*box, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.boxes[mb.Dir]; b != nil {
		b.refs++
		return b, nil
	}
	st, err := mb.Sync()
	if err != nil {
		return nil, err
	}
	b := &box{srv: s, mb: mb, msgs: st.Messages, keywords: st.Keywords, uidValidity: st.UIDValidity, uidNext: st.UIDNext, refs: 1}
	b.tracker = imapserver.NewMailboxTracker(uint32(len(b.msgs)))
	b.stop = watch(mb.Dir, func() { b.refresh(nil, nil) })
	s.boxes[mb.Dir] = b
	return b, nil
}

// release drops one session's use of b.
func (s *Server) release(b *box) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.refs--; b.refs == 0 {
		delete(s.boxes, b.mb.Dir)
		b.stop()
	}
}

// lookup returns the shared state of the mailbox in dir if a session has
// it open.
func (s *Server) lookup(dir string) *box {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.boxes[dir]
}

// refresh syncs the mailbox and queues what changed since the last time
// for every session: EXPUNGE for messages gone, FETCH FLAGS for changed
// flags (not to source for the UIDs in mine, whose STORE answers itself),
// EXISTS for new messages.
func (b *box) refresh(source *imapserver.SessionTracker, mine map[uint32]bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, err := b.mb.Sync()
	if err != nil {
		return err
	}
	if st.UIDValidity != b.uidValidity {
		// The folder was made anew: every message is another one.
		for i := len(b.msgs); i > 0; i-- {
			b.tracker.QueueExpunge(uint32(i))
		}
		b.msgs = nil
		b.uidValidity = st.UIDValidity
	}
	now := make(map[uint32]*maildir.Message, len(st.Messages))
	for i := range st.Messages {
		now[st.Messages[i].UID] = &st.Messages[i]
	}
	for i := len(b.msgs) - 1; i >= 0; i-- {
		if now[b.msgs[i].UID] == nil {
			b.tracker.QueueExpunge(uint32(i + 1))
		}
	}
	if st.Keywords != b.keywords {
		b.keywords = st.Keywords
		b.tracker.QueueMailboxFlags(mailboxFlags(&b.keywords))
	}
	kept := make([]maildir.Message, 0, len(st.Messages))
	var last uint32
	for i := range b.msgs {
		m := now[b.msgs[i].UID]
		if m == nil {
			continue
		}
		kept = append(kept, *m)
		last = m.UID
		if m.Info != b.msgs[i].Info {
			src := source
			if !mine[m.UID] {
				src = nil
			}
			b.tracker.QueueMessageFlags(uint32(len(kept)), imap.UID(m.UID), messageFlags(m, &b.keywords), src)
		}
	}
	old := len(kept)
	for i := range st.Messages {
		if st.Messages[i].UID > last {
			kept = append(kept, st.Messages[i])
		}
	}
	if len(kept) > old {
		b.tracker.QueueNumMessages(uint32(len(kept)))
	}
	b.msgs, b.uidNext = kept, st.UIDNext
	return nil
}

// watch calls changed soon after files appear, go or are renamed in the
// folder's new/ and cur/, until the returned function is called. Without
// inotify it polls once a second.
func watch(dir string, changed func()) func() {
	done := make(chan struct{})
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		go poll(done, changed)
		return func() { close(done) }
	}
	const mask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	for _, sub := range []string{"new", "cur"} {
		unix.InotifyAddWatch(fd, filepath.Join(dir, sub), mask)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	events := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 16*1024)
		for {
			if _, err := f.Read(buf); err != nil {
				close(events)
				return
			}
			select {
			case events <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		for range events {
			// Let a burst (a client's STORE over many messages,
			// a delivery's tmp→new link and uidlist append) settle.
			time.Sleep(20 * time.Millisecond)
			select {
			case <-events:
			default:
			}
			changed()
		}
	}()
	return func() { f.Close() }
}

func poll(done <-chan struct{}, changed func()) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			changed()
		}
	}
}

// systemFlags maps Maildir's flag letters to IMAP's, in Dovecot's order.
var systemFlags = []struct {
	letter byte
	flag   imap.Flag
}{{'R', imap.FlagAnswered}, {'F', imap.FlagFlagged}, {'T', imap.FlagDeleted}, {'S', imap.FlagSeen}, {'D', imap.FlagDraft}}

// messageFlags returns a message's flags and keywords.
func messageFlags(m *maildir.Message, kw *maildir.Keywords) []imap.Flag {
	out := []imap.Flag{}
	f := m.Flags()
	for _, sf := range systemFlags {
		for i := 0; i < len(f); i++ {
			if f[i] == sf.letter {
				out = append(out, sf.flag)
			}
		}
	}
	for _, k := range m.Keywords(kw) {
		out = append(out, imap.Flag(k))
	}
	return out
}

// mailboxFlags is the FLAGS of a mailbox: the system flags and its
// keywords.
func mailboxFlags(kw *maildir.Keywords) []imap.Flag {
	out := make([]imap.Flag, 0, 5)
	for _, sf := range systemFlags {
		out = append(out, sf.flag)
	}
	for _, k := range kw {
		if k != "" {
			out = append(out, imap.Flag(k))
		}
	}
	return out
}
