// Package pop3 is postdove's POP3 mail process: the TRANSACTION and
// UPDATE states of RFC 1939 that Dovecot's pop3 serves after pop3-login
// has authenticated the client, on the user's INBOX in the Maildir store
// (pkg/maildir), as Dovecot 2.3 does:
//
//   - "+OK Logged in." first, then CAPA, STAT, LIST, UIDL, RETR, TOP,
//     DELE, RSET, NOOP and QUIT, with Dovecot's replies and errors
//     ("-ERR Unknown command: X", "-ERR There's no message 9.", "-ERR
//     Noise after message number: x", ...).
//   - The session sees the mailbox as it was at login. Opening it moves
//     the messages in new/ to cur/ (they are no longer recent); QUIT sets
//     \Seen on the messages RETR sent (not TOP) and expunges those DELE
//     marked. A connection that ends without QUIT changes nothing more.
//     pop3_no_flag_updates = yes leaves new/ and \Seen alone.
//   - UIDL is pop3_uidl_format (default %08Xu%08Xv: UID and UIDVALIDITY
//     of dovecot-uidlist in hexadecimal), so a client that fetched from
//     Dovecot sees the same UIDLs after the move.
//   - The last log line is Dovecot's "Disconnected: Logged out " (or
//     "Connection closed ") followed by pop3_logout_format.
package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"postdove/pkg/doveconf"
	"postdove/pkg/handoff"
	"postdove/pkg/maildir"
)

// Defaults of the settings the session reads, for an Info without them.
const (
	defaultUIDLFormat   = "%08Xu%08Xv"
	defaultLogoutFormat = "top=%t/%p, retr=%r/%b, del=%d/%m, size=%s"
)

// IdleTimeout is how long a session waits for a command, as Dovecot's
// pop3 waits (10 minutes).
var IdleTimeout = 10 * time.Minute

// maxLine is the longest command line taken; a longer one ends the session.
const maxLine = 8192

type server struct{}

// NewServer returns the POP3 mail side for a user's process.
func NewServer() handoff.Server { return server{} }

// session is one client's TRANSACTION state.
type session struct {
	conn     net.Conn
	info     *handoff.Info
	r        *bufio.Reader
	w        *countWriter
	mb       *maildir.Mailbox
	st       *maildir.Status
	deleted  []bool
	seen     []bool // sent by RETR
	noFlags  bool   // pop3_no_flag_updates
	size     int64  // of all messages at login
	top, ret struct{ n, bytes int64 }
	expunged int
}

// countWriter counts the bytes written through it.
type countWriter struct {
	*bufio.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.Writer.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countWriter) WriteString(s string) (int, error) {
	n, err := c.Writer.WriteString(s)
	c.n += int64(n)
	return n, err
}

func setting(info *handoff.Info, name, def string) string {
	if v, ok := info.Settings[name]; ok {
		return v
	}
	return def
}

// Serve runs the session of an authenticated client.
func (server) Serve(conn net.Conn, info *handoff.Info, logf func(format string, args ...any)) {
	defer conn.Close()
	s := &session{conn: conn, info: info,
		r:       bufio.NewReaderSize(io.MultiReader(bytes.NewReader(info.Input), conn), 4096),
		w:       &countWriter{Writer: bufio.NewWriter(conn)},
		noFlags: setting(info, "pop3_no_flag_updates", "no") == "yes"}
	if err := s.open(); err != nil {
		logf("Error: %v", err)
		s.w.WriteString("-ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information.\r\n")
		s.w.Flush()
		return
	}
	s.w.WriteString("+OK Logged in.\r\n")
	reason := s.loop()
	logf("Disconnected: %s %s", reason, s.logout())
}

// open takes the snapshot of INBOX the session serves.
func (s *session) open() error {
	vars := doveconf.Vars{User: s.info.User, Home: s.info.Home}
	ml := doveconf.ParseMailLocation(s.info.Mail).Expand(vars)
	if ml.Format != "" && ml.Format != "maildir" {
		return fmt.Errorf("mail_location %s: only maildir is supported", s.info.Mail)
	}
	if ml.Root == "" {
		ml.Root = vars.ExpandPath("~/Maildir")
	}
	store := maildir.OpenStore(ml.Root, maildir.Options{UID: -1, GID: -1})
	mb, err := store.Mailbox("INBOX")
	if err != nil {
		return err
	}
	st, err := mb.Sync()
	if err != nil {
		return err
	}
	if !s.noFlags {
		var moves []maildir.FlagChange
		for i := range st.Messages {
			m := &st.Messages[i]
			if m.Recent() {
				moves = append(moves, maildir.FlagChange{UID: m.UID, Flags: m.Flags(), Keywords: m.Keywords(&st.Keywords)})
			}
		}
		for _, c := range moves {
			// Another session may have expunged it meanwhile.
			if err := mb.SetFlags(c); err != nil && !errors.Is(err, maildir.ErrNoMessage) {
				return err
			}
		}
		if len(moves) > 0 {
			if st, err = mb.Sync(); err != nil {
				return err
			}
		}
	}
	s.mb, s.st = mb, st
	s.deleted = make([]bool, len(st.Messages))
	s.seen = make([]bool, len(st.Messages))
	for _, m := range st.Messages {
		s.size += m.VSize
	}
	return nil
}

// loop reads and answers commands until QUIT or the end of the
// connection, and returns the reason for the log.
func (s *session) loop() string {
	for {
		if s.r.Buffered() == 0 {
			if s.w.Flush() != nil {
				return "Connection closed"
			}
		}
		s.conn.SetReadDeadline(time.Now().Add(IdleTimeout))
		line, err := s.readLine()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.w.WriteString("-ERR Disconnected for inactivity.\r\n")
				s.w.Flush()
				return "Inactivity"
			}
			if errors.Is(err, errLineTooLong) {
				s.w.WriteString("-ERR Input line too long.\r\n")
				s.w.Flush()
				return "Input line too long"
			}
			return "Connection closed"
		}
		if quit := s.command(line); quit {
			s.w.Flush()
			return "Logged out"
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line without its CRLF (or LF).
func (s *session) readLine() (string, error) {
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return "", errLineTooLong
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
	buf = bytes.TrimSuffix(buf[:len(buf)-1], []byte("\r"))
	return string(buf), nil
}

func (s *session) ok(format string, args ...any) {
	s.w.WriteString("+OK")
	if format != "" {
		s.w.WriteString(" " + fmt.Sprintf(format, args...))
	}
	s.w.WriteString("\r\n")
}

func (s *session) fail(text string) { s.w.WriteString("-ERR " + text + "\r\n") }

// command answers one line; it reports whether the session ends.
func (s *session) command(line string) bool {
	name, args := splitCommand(line)
	switch name {
	case "":
		s.fail("Unknown command.")
	case "CAPA":
		s.w.WriteString("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n.\r\n")
	case "NOOP":
		s.ok("")
	case "STAT":
		n, size := s.live()
		s.ok("%d %d", n, size)
	case "LIST":
		s.list(args, func(i int, m *maildir.Message) string { return strconv.FormatInt(m.VSize, 10) }, "%d messages:")
	case "UIDL":
		s.list(args, s.uidl, "")
	case "RETR":
		if i, ok := s.message(args, true); ok {
			start := s.w.n
			s.ok("%d octets", s.st.Messages[i].VSize)
			if s.send(i, -1) {
				s.seen[i] = true
				s.ret.n++
				s.ret.bytes += s.w.n - start
				s.w.WriteString(".\r\n")
			}
		}
	case "TOP":
		s.topCommand(args)
	case "DELE":
		if i, ok := s.message(args, true); ok {
			s.deleted[i] = true
			s.ok("Marked to be deleted.")
		}
	case "RSET":
		for i := range s.deleted {
			s.deleted[i], s.seen[i] = false, false
		}
		s.ok("")
	case "QUIT":
		s.update()
		return true
	default:
		s.fail("Unknown command: " + name)
	}
	return false
}

func (s *session) topCommand(args string) {
	n, rest, err := parseMsgnum(args, false)
	if err != nil {
		s.fail(err.Error())
		return
	}
	lines, err := parseSize(rest)
	if err != nil {
		s.fail(err.Error())
		return
	}
	i, ok := s.index(n)
	if !ok {
		return
	}
	start := s.w.n
	s.ok("")
	if s.send(i, int64(min(lines, 1<<62))) {
		s.top.n++
		s.top.bytes += s.w.n - start
		s.w.WriteString(".\r\n")
	}
}

// live counts the messages not marked deleted and their size.
func (s *session) live() (n int, size int64) {
	for i, m := range s.st.Messages {
		if !s.deleted[i] {
			n++
			size += m.VSize
		}
	}
	return n, size
}

// message parses a message number argument and finds the message; it
// replies itself when there is none.
func (s *session) message(args string, last bool) (int, bool) {
	n, _, err := parseMsgnum(args, last)
	if err != nil {
		s.fail(err.Error())
		return 0, false
	}
	return s.index(n)
}

func (s *session) index(n uint32) (int, bool) {
	if n == 0 || int64(n) > int64(len(s.st.Messages)) {
		s.fail(fmt.Sprintf("There's no message %d.", n))
		return 0, false
	}
	if s.deleted[n-1] {
		s.fail("Message is deleted.")
		return 0, false
	}
	return int(n - 1), true
}

// list answers LIST and UIDL: one message with an argument, else all
// those not deleted after a header line.
func (s *session) list(args string, item func(int, *maildir.Message) string, header string) {
	if args != "" {
		if i, ok := s.message(args, true); ok {
			s.ok("%d %s", i+1, item(i, &s.st.Messages[i]))
		}
		return
	}
	if header != "" {
		n, _ := s.live()
		s.ok(header, n)
	} else {
		s.ok("")
	}
	for i := range s.st.Messages {
		if !s.deleted[i] {
			fmt.Fprintf(s.w, "%d %s\r\n", i+1, item(i, &s.st.Messages[i]))
		}
	}
	s.w.WriteString(".\r\n")
}

// uidl is a message's unique id by pop3_uidl_format.
func (s *session) uidl(i int, m *maildir.Message) string {
	return expand(setting(s.info, "pop3_uidl_format", defaultUIDLFormat), func(name string) (uint64, string, bool) {
		switch name {
		case "u", "uid":
			return uint64(m.UID), "", true
		case "v", "uidvalidity":
			return uint64(s.st.UIDValidity), "", true
		case "f", "filename", "g", "guid":
			// A Maildir message's GUID is its file's base name.
			return 0, m.Base, true
		}
		return 0, "", false
	})
}

// send writes message i with CRLF line ends and dot-stuffing: all of it,
// or (lines >= 0) the header, the blank line and that many body lines.
// It reports whether the message could be read; if not, the connection
// is closed, as Dovecot ends a session whose mail vanished mid-reply.
func (s *session) send(i int, lines int64) bool {
	f, err := s.mb.OpenMessage(&s.st.Messages[i])
	if err != nil {
		s.conn.Close()
		return false
	}
	defer f.Close()
	return writeMessage(s.w, f, lines) == nil
}

// writeMessage copies a message to w as a POP3 multi-line body (without
// the final ".\r\n"): CRLF line ends, a line starting with "." stuffed,
// a last line without its newline ended. lines < 0 copies it all, else
// the header, the blank line and that many body lines.
func writeMessage(w io.Writer, r io.Reader, lines int64) error {
	br := bufio.NewReaderSize(r, 64*1024)
	inBody, start := false, true
	for lines != 0 || !inBody {
		l, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return err
		}
		if len(l) == 0 {
			return nil
		}
		if err != bufio.ErrBufferFull {
			l = bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r"))
		}
		if start && len(l) > 0 && l[0] == '.' {
			w.Write([]byte{'.'})
		}
		if _, werr := w.Write(l); werr != nil {
			return werr
		}
		if err == bufio.ErrBufferFull {
			start = false
			continue
		}
		w.Write([]byte("\r\n"))
		if inBody {
			lines--
		} else if start && len(l) == 0 {
			inBody = true
		}
		start = true
		if err == io.EOF {
			return nil
		}
	}
	return nil
}

// update is QUIT's UPDATE state: \Seen on the messages sent, then the
// deleted ones expunged.
func (s *session) update() {
	var seen []maildir.FlagChange
	var gone []uint32
	for i := range s.st.Messages {
		m := &s.st.Messages[i]
		switch {
		case s.deleted[i]:
			gone = append(gone, m.UID)
		case s.seen[i] && !s.noFlags && !bytes.ContainsRune([]byte(m.Flags()), 'S'):
			seen = append(seen, maildir.FlagChange{UID: m.UID, Flags: m.Flags() + "S", Keywords: m.Keywords(&s.st.Keywords)})
		}
	}
	if len(seen) > 0 {
		if err := s.mb.SetFlags(seen...); err != nil && !errors.Is(err, maildir.ErrNoMessage) {
			s.fail("[SYS/TEMP] Internal error occurred. Refer to server log for more information.")
			return
		}
	}
	if len(gone) > 0 {
		if err := s.mb.Expunge(gone...); err != nil {
			s.fail("[SYS/TEMP] Internal error occurred. Refer to server log for more information.")
			return
		}
		s.expunged = len(gone)
		s.ok("Logging out, messages deleted.")
		return
	}
	s.ok("Logging out.")
}

// logout is pop3_logout_format expanded for this session.
func (s *session) logout() string {
	return expand(setting(s.info, "pop3_logout_format", defaultLogoutFormat), func(name string) (uint64, string, bool) {
		var v int64
		switch name {
		case "t", "top_lines", "top_count":
			v = s.top.n
		case "p", "top_bytes":
			v = s.top.bytes
		case "r", "retr_count":
			v = s.ret.n
		case "b", "retr_bytes":
			v = s.ret.bytes
		case "d", "deleted_count":
			v = int64(s.expunged)
		case "m", "message_count":
			v = int64(len(s.st.Messages))
		case "s", "message_bytes":
			v = s.size
		default:
			return 0, "", false
		}
		return uint64(v), "", true
	})
}
