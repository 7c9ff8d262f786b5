package imap

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postdove/pkg/doveconf"
	"postdove/pkg/handoff"
	"postdove/pkg/maildir"
)

// Server is the IMAP mail side of one user's process. Serve may be called
// concurrently, once for each of the user's connections.
type Server struct {
	mu    sync.Mutex
	boxes map[string]*box // the selected mailboxes, by folder

	envelopes envelopeCache
}

// NewServer returns the IMAP mail side of a user's process.
func NewServer() handoff.Server { return newServer() }

func newServer() *Server { return &Server{boxes: map[string]*box{}} }

// caps are the capabilities served after login (imapserver adds SASL-IR,
// LITERAL-, UNSELECT, ENABLE, IDLE and UTF8=ACCEPT).
var caps = imap.CapSet{
	imap.CapIMAP4rev1: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {}, imap.CapESearch: {},
	imap.CapListExtended: {}, imap.CapListStatus: {}, imap.CapMove: {}, imap.CapStatusSize: {},
	imap.CapBinary: {}, imap.CapChildren: {}, imap.CapSpecialUse: {}, imap.CapLiteralPlus: {},
}

// logger writes a session's errors, and imapserver's, as Dovecot's
// "Error: " lines.
type logger func(format string, args ...any)

func (l logger) Printf(format string, args ...any) { l("Error: "+format, args...) }

// OpenStore opens the Maildir that a user's mail location names.
func OpenStore(info *handoff.Info) (*maildir.Store, error) {
	ml := doveconf.ParseMailLocation(info.Mail).Expand(doveconf.Vars{User: info.User, Home: info.Home})
	switch {
	case ml.Format == "" && ml.Root == "":
		if info.Home == "" {
			return nil, fmt.Errorf("mail_location not set and no home directory")
		}
		ml.Root = strings.TrimSuffix(info.Home, "/") + "/Maildir"
	case ml.Format != "" && ml.Format != "maildir":
		return nil, fmt.Errorf("mail_location %q: only the maildir format is supported", info.Mail)
	}
	if ml.Layout != "" && !strings.EqualFold(ml.Layout, "maildir++") {
		return nil, fmt.Errorf("mail_location %q: LAYOUT=%s is not supported (only Maildir++)", info.Mail, ml.Layout)
	}
	if ml.Index != "" || ml.Control != "" {
		return nil, fmt.Errorf("mail_location %q: INDEX= and CONTROL= are not supported", info.Mail)
	}
	if ml.Root == "" {
		return nil, fmt.Errorf("mail_location %q: no Maildir path", info.Mail)
	}
	return maildir.OpenStore(ml.Root, maildir.Options{UID: -1, GID: -1}), nil
}

// autoMailboxes creates and subscribes the namespace's mailboxes that say
// auto = create or subscribe.
func autoMailboxes(st *maildir.Store, ns *namespace) {
	for _, m := range ns.mailboxes {
		if m.Auto != "create" && m.Auto != "subscribe" {
			continue
		}
		name, err := CheckName(m.Name, ns.sep)
		if err != nil {
			continue
		}
		if name != "INBOX" {
			st.Create(name)
		}
		if m.Auto == "subscribe" {
			st.Subscribe(name, true)
		}
	}
}

// Serve answers the client's login command, then serves the session on
// conn until the client logs out or goes, and logs Dovecot's
// "Disconnected: ..." line.
func (s *Server) Serve(conn net.Conn, info *handoff.Info, logf func(format string, args ...any)) {
	st := &stats{}
	w := newWire(conn, info.Tag, info.Input)
	store, err := OpenStore(info)
	if err != nil {
		logf("Error: %v", err)
		fmt.Fprintf(w, "* BYE Internal error occurred. Refer to server log for more information.\r\n")
		w.Close()
		logf("Disconnected: Internal error occurred. Refer to server log for more information. %s", st.counters(w))
		return
	}
	ns := newNamespace(info.Namespaces)
	autoMailboxes(store, &ns)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{srv: s, store: store, ns: ns, stats: st, log: logger(logf)}, &imapserver.GreetingData{PreAuth: true}, nil
		},
		Caps:         caps,
		Logger:       logger(logf),
		InsecureAuth: true,
	})
	srv.Serve(&oneListener{conn: w})
	if w.loggedOut() {
		logf("Disconnected: Logged out %s", st.counters(w))
		return
	}
	why := "No commands sent"
	if name, at := w.lastCommand(); name != "" {
		why = fmt.Sprintf("%s finished %.3f secs ago", name, time.Since(at).Seconds())
	}
	logf("Disconnected: Connection closed (%s) %s", why, st.counters(w))
}

// counters is imap_logout_format's default, Dovecot 2.3's.
func (st *stats) counters(w *wire) string {
	in, out := w.counts()
	return fmt.Sprintf("in=%d out=%d deleted=%d expunged=%d trashed=%d hdr_count=%d hdr_bytes=%d body_count=%d body_bytes=%d",
		in, out, st.deleted, st.expunged, st.trashed, st.hdrCount, st.hdrBytes, st.bodyCount, st.bodyBytes)
}

// wire is the client connection as imapserver sees it: reads return the
// input the login side had already read first; the PREAUTH greeting
// imapserver writes becomes the tagged reply to the login command, with
// the same capabilities; bytes are counted both ways.
type wire struct {
	net.Conn
	tag string

	rmu     sync.Mutex
	pending []byte
	in      int64
	scan    cmdScanner
	lastAt  time.Time // when the last command was read

	wmu      sync.Mutex
	greeting []byte // the greeting line while it is incomplete
	greeted  bool
	out      int64
	tail     []byte // the last bytes written, to tell a LOGOUT
	buf      []byte // written but not yet sent
	timer    *time.Timer
	armed    bool  // timer will flush buf
	werr     error // the first failed send

	closeOnce sync.Once
	closed    chan struct{}
}

func newWire(c net.Conn, tag string, input []byte) *wire {
	return &wire{Conn: c, tag: tag, pending: append([]byte(nil), input...), closed: make(chan struct{})}
}

func (w *wire) Read(p []byte) (int, error) {
	w.rmu.Lock()
	if len(w.pending) > 0 {
		n := copy(p, w.pending)
		w.pending = w.pending[n:]
		w.got(p[:n])
		w.rmu.Unlock()
		return n, nil
	}
	w.rmu.Unlock()
	// imapserver asks for more input only when it has answered what it
	// read: what it wrote goes out before waiting for the client.
	w.flush()
	n, err := w.Conn.Read(p)
	w.rmu.Lock()
	w.got(p[:n])
	w.rmu.Unlock()
	return n, err
}

// got counts and scans bytes read from the client.
func (w *wire) got(p []byte) {
	w.in += int64(len(p))
	w.scan.Write(p)
	if len(p) > 0 && w.scan.last != "" {
		w.lastAt = time.Now()
	}
}

// lastCommand is the name of the client's last command and when it came.
func (w *wire) lastCommand() (string, time.Time) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	return w.scan.last, w.lastAt
}

func (w *wire) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if !w.greeted {
		w.greeting = append(w.greeting, p...)
		i := bytes.Index(w.greeting, []byte("\r\n"))
		if i < 0 {
			return len(p), nil
		}
		w.greeted = true
		rest := w.greeting[i+2:]
		line := loginReply(w.tag, string(w.greeting[:i]))
		if err := w.write(append([]byte(line), rest...)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if err := w.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Writes are coalesced: imapserver flushes after every response, which
// would be one write(2) per FETCH line. They are sent when imapserver
// reads again (it has answered the command), when wireBuffer bytes are
// waiting, and at most flushDelay after being written (updates pushed
// during IDLE, replies while the client's next command is already read).
const (
	wireBuffer = 64 * 1024
	flushDelay = 2 * time.Millisecond
)

// write queues p for the client; wmu is held.
func (w *wire) write(p []byte) error {
	if w.werr != nil {
		return w.werr
	}
	w.buf = append(w.buf, p...)
	w.tail = append(w.tail, p...)
	if len(w.tail) > 64 {
		w.tail = append(w.tail[:0], w.tail[len(w.tail)-64:]...)
	}
	if len(w.buf) >= wireBuffer {
		return w.send()
	}
	if !w.armed {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(flushDelay, w.flush)
		} else {
			w.timer.Reset(flushDelay)
		}
	}
	return nil
}

// send writes out what is queued; wmu is held.
func (w *wire) send() error {
	if len(w.buf) == 0 || w.werr != nil {
		w.buf = w.buf[:0]
		return w.werr
	}
	n, err := w.Conn.Write(w.buf)
	w.out += int64(n)
	w.werr = err
	if cap(w.buf) > 4*wireBuffer {
		w.buf = nil // a large literal's buffer is not kept
	} else {
		w.buf = w.buf[:0]
	}
	return err
}

// flush sends what is queued.
func (w *wire) flush() {
	w.wmu.Lock()
	w.armed = false
	w.send()
	w.wmu.Unlock()
}

// loginReply turns imapserver's "* PREAUTH [CAPABILITY ...] text" into
// Dovecot's reply to the login command.
func loginReply(tag, greeting string) string {
	capa := ""
	if i := strings.Index(greeting, "[CAPABILITY "); i >= 0 {
		if j := strings.IndexByte(greeting[i:], ']'); j >= 0 {
			capa = greeting[i : i+j+1]
		}
	}
	if tag == "" {
		tag = "*"
	}
	if capa == "" {
		return tag + " OK Logged in\r\n"
	}
	return tag + " OK " + capa + " Logged in\r\n"
}

// loggedOut reports whether the session ended with a LOGOUT's reply.
func (w *wire) loggedOut() bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return bytes.HasSuffix(w.tail, []byte(" OK LOGOUT completed\r\n"))
}

func (w *wire) counts() (in, out int64) {
	w.rmu.Lock()
	in = w.in
	w.rmu.Unlock()
	w.wmu.Lock()
	out = w.out
	w.wmu.Unlock()
	return in, out
}

func (w *wire) Close() error {
	var err error
	w.closeOnce.Do(func() {
		w.flush()
		w.wmu.Lock()
		if w.timer != nil {
			w.timer.Stop()
		}
		w.wmu.Unlock()
		err = w.Conn.Close()
		close(w.closed)
	})
	return err
}

// oneListener hands imapserver one connection, then waits for it to be
// closed and reports itself closed.
type oneListener struct {
	conn *wire
	used bool
}

func (l *oneListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.conn, nil
	}
	<-l.conn.closed
	return nil, net.ErrClosed
}

func (l *oneListener) Close() error   { return nil }
func (l *oneListener) Addr() net.Addr { return l.conn.LocalAddr() }

var _ io.ReadWriter = (*wire)(nil)
