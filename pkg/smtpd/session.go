package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"postdove/pkg/addr"
	"postdove/pkg/cleanup"
	"postdove/pkg/queue"
)

// commandNames is the order Postfix's disconnect line counts commands in.
var commandNames = []string{"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy", "etrn", "quit", "unknown"}

type session struct {
	s      *Server
	ctx    context.Context
	conn   net.Conn
	r      *bufio.Reader
	cmdR   *bufio.Reader // the command reader while r is a message body's large one
	w      *replyWriter
	name   string
	ip     string
	client string // name[ip]
	where  string // the last command, for "lost connection after X"

	helo   string
	proto  string
	sender *string
	rcpts  []string
	count  map[string][2]int // command → {ok, total}
	errors int
	quit   bool
	tlsOn  bool
	// tlsInfo is the TLS session in Postfix's words: "TLSv1.3 with cipher
	// ... (256/256 bits)" and "key-exchange ... server-digest SHA256".
	tlsInfo [2]string
	// size is the last MAIL SIZE= value; Postfix keeps it after a
	// rejected MAIL command until the transaction is reset.
	size int64
	// file is the queue file, open from the first accepted recipient on;
	// attrs and dsn are the MAIL and RCPT parameters recorded in it.
	file     Pending
	attrs    map[string]string
	dsn      []cleanup.RecipientDSN
	smtputf8 bool
	hold     bool // an access table said HOLD
	// deferIfPermit is the 450 a temporary DNS failure leaves, given if
	// nothing else rejects the recipient.
	deferIfPermit *result
	// senderDefer is the deferIfPermit the sender restrictions left at
	// MAIL, with smtpd_delay_reject = no.
	senderDefer *result
	// denied is the client restrictions' reject sent in place of the
	// banner (smtpd_delay_reject = no): every command but QUIT gets 503.
	denied string
	// hangup is set by a 421 or 521 reply: the session ends after it.
	hangup bool

	// illPipelining is set once the client sent ahead where it may not
	// (reject_unauth_pipelining tests it, as Postfix 2.6 and later do).
	illPipelining bool
	// bareLF is smtpd_forbid_bare_newline for this client: "" (no),
	// "normalize" or "reject".
	bareLF string

	bdatBuf []byte
}

// errClosed ends a session after its final reply.
var errClosed = errors.New("session closed")

// ServeConn runs one SMTP session on c and closes it.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	ip := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	ss := &session{s: s, ctx: ctx, conn: c, r: bufio.NewReaderSize(c, cmdReaderSize), w: newReplyWriter(c),
		ip: ip, where: "CONNECT", proto: "SMTP", count: map[string][2]int{}}
	ss.name = s.clientName(ctx, ip)
	if mode := s.bareLF; mode != "" && !inNetworks(s.bareLFExempt, net.ParseIP(ip)) {
		ss.bareLF = mode
	}
	ss.client = ss.name + "[" + ip + "]"
	s.log.Info("connect from %s", ss.client)
	if !ss.s.standAlone {
		n, ok, done := s.admit(ip)
		defer done()
		if !ok {
			// As Postfix: the client hears 421 instead of the banner.
			s.log.Warning("Connection concurrency limit exceeded: %d from %s for service %s", n, ss.client, s.serviceName())
			fmt.Fprintf(c, "421 4.7.0 %s Error: too many connections from %s\r\n", s.hostname, ip)
			s.log.Info("disconnect from %s%s", ss.client, ss.stats())
			return
		}
	}
	if s.wrapper && s.tls != nil {
		// smtps: TLS from the first byte.
		if err := ss.handshake(); err != nil {
			ss.s.log.Info("lost connection after %s from %s", ss.where, ss.client)
			s.log.Info("disconnect from %s%s", ss.client, ss.stats())
			return
		}
	}
	ss.run()
	ss.reset() // an unfinished queue file goes
	s.log.Info("disconnect from %s%s", ss.client, ss.stats())
}

func (ss *session) stats() string {
	var b strings.Builder
	var ok, total int
	for _, n := range commandNames {
		c, seen := ss.count[n]
		if !seen {
			continue
		}
		ok += c[0]
		total += c[1]
		b.WriteString(" " + n + "=" + ratio(c))
	}
	b.WriteString(" commands=" + ratio([2]int{ok, total}))
	return b.String()
}

func ratio(c [2]int) string {
	if c[0] == c[1] && c[1] > 0 {
		return strconv.Itoa(c[0])
	}
	return fmt.Sprintf("%d/%d", c[0], c[1])
}

// reply sends one reply; it is flushed unless more pipelined commands
// are already waiting.
func (ss *session) reply(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if strings.HasPrefix(text, "421") || strings.HasPrefix(text, "521") {
		ss.hangup = true
	}
	ss.w.WriteString(text + "\r\n")
	if ss.r.Buffered() == 0 {
		ss.w.Flush()
	}
}

// fail answers an error reply, counting it towards the error limits.
func (ss *session) fail(format string, args ...any) {
	ss.errors++
	if ss.errors >= ss.s.softLimit && ss.s.errorSleep > 0 {
		ss.w.Flush()
		time.Sleep(ss.s.errorSleep)
	}
	ss.reply(format, args...)
}

// readLine reads one line without its CR LF (a bare LF ends it too,
// which bare reports), keeping at most max bytes of it.
func (ss *session) readLine(max int) (line string, bare bool, err error) {
	ss.w.Flush()
	ss.smallReader()
	ss.conn.SetReadDeadline(time.Now().Add(ss.s.timeout))
	var buf []byte
	for {
		chunk, err := ss.r.ReadSlice('\n')
		if len(buf) < max {
			room := max - len(buf)
			if len(chunk) < room {
				room = len(chunk)
			}
			buf = append(buf, chunk[:room]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", false, err
		}
		break
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	bare = !bytes.HasSuffix(buf, []byte("\r"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	return string(buf), bare, nil
}

// lost logs why a read failed: a timeout (with Postfix's 421) or a lost
// connection.
func (ss *session) lost(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		ss.reply("421 4.4.2 %s Error: timeout exceeded", ss.s.hostname)
		ss.w.Flush()
		ss.s.log.Info("timeout after %s from %s", ss.where, ss.client)
		return
	}
	ss.s.log.Info("lost connection after %s from %s", ss.where, ss.client)
}

func (ss *session) run() {
	defer ss.w.Flush()
	ss.greet()
	for !ss.quit && !ss.hangup {
		line, bare, err := ss.readLine(4096)
		if err != nil {
			ss.lost(err)
			return
		}
		if bare && ss.bareLF == "reject" {
			ss.logReject(ss.queueID(), ss.where, "bare <LF> received", "")
			ss.reply("%s", ss.bareLFReply())
			ss.w.Flush()
			return
		}
		// Postfix answers the command after the last error allowed.
		if ss.errors >= ss.s.hardLimit {
			ss.reply("421 4.7.0 %s Error: too many errors", ss.s.hostname)
			ss.w.Flush()
			ss.s.log.Info("too many errors after %s from %s", ss.where, ss.client)
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToLower(verb)
		h := handlers[verb]
		if h == nil {
			verb = "unknown"
			ss.where = "UNKNOWN"
			h = (*session).unknown
		}
		ss.bump(verb, 1)
		if verb == "unknown" && ss.forbidden(line) {
			ss.s.log.Warning("non-SMTP command from %s: %s", ss.client, line)
			ss.reply("221 2.7.0 Error: I can break rules, too. Goodbye.")
			return
		}
		if ss.denied != "" && verb != "quit" {
			ss.fail("503 5.7.0 Error: access denied for %s", ss.client)
			continue
		}
		if verb != "unknown" {
			ss.where = strings.ToUpper(verb)
		}
		ss.checkPipelining(verb)
		ok, err := h(ss, strings.TrimLeft(arg, " "))
		if ok {
			ss.bump(verb, 0)
		}
		if err != nil {
			if !errors.Is(err, errClosed) {
				ss.lost(err)
			}
			return
		}
	}
}

// greet sends the banner or, with smtpd_delay_reject = no, the client
// restrictions' reject in its place (after which only QUIT is served).
func (ss *session) greet() {
	if ss.denied = ss.rejectNow(ss.listCheck("smtpd_client_restrictions")); ss.denied == "" {
		ss.reply("220 %s", ss.s.banner)
	}
}

// bump counts a command for the disconnect line: i is 1 for each one
// received, 0 for each one that succeeded.
func (ss *session) bump(verb string, i int) {
	c := ss.count[verb]
	c[i]++
	ss.count[verb] = c
}

// lastInGroup are the commands after which a client must wait for the
// reply even with PIPELINING (RFC 2920), as Postfix's smtpd flags them.
var lastInGroup = map[string]bool{"helo": true, "ehlo": true, "starttls": true, "data": true, "noop": true, "vrfy": true}

// checkPipelining notes (and logs, once) a client that sent more input
// after a command where it should have waited: after any command when
// it did not say EHLO, else after one that ends a group.
func (ss *session) checkPipelining(verb string) {
	if ss.s.standAlone || ss.illPipelining || ss.r.Buffered() == 0 || (ss.proto == "ESMTP" && !lastInGroup[verb]) {
		return
	}
	ss.illPipelining = true
	ahead, _ := ss.r.Peek(ss.r.Buffered())
	ss.s.log.Info("improper command pipelining after %s from %s: %s", strings.ToUpper(verb), ss.client, printable(ahead))
}

// printable is text for a log line: CR, LF and tab as \r, \n and \t,
// other control characters as '?'.
func printable(b []byte) string {
	var out strings.Builder
	for _, c := range b {
		switch {
		case c == '\r':
			out.WriteString(`\r`)
		case c == '\n':
			out.WriteString(`\n`)
		case c == '\t':
			out.WriteString(`\t`)
		case c < ' ' || c >= 0x7f:
			out.WriteByte('?')
		default:
			out.WriteByte(c)
		}
	}
	return out.String()
}

// logReject logs a rejected command as Postfix does: "ID: reject: WHAT
// from client: text; from=<sender> to=<rcpt> proto=P helo=<h>", with
// from= and to= only when there are such addresses.
func (ss *session) logReject(id, what, text, to string) {
	ss.logLine(id, "reject", what, text, to)
}

// logAction logs an access table action other than reject ("hold")
// for the current command.
func (ss *session) logAction(action, text, to string) {
	ss.logLine(ss.queueID(), action, ss.where, text, to)
}

// The to=<> of a log line for a command other than RCPT is, as in
// Postfix, the transaction's first accepted recipient, except at DATA
// with more than one (the data restrictions are about them all).
func (ss *session) logLine(id, action, what, text, to string) {
	if to == "" && len(ss.rcpts) > 0 && (what != "DATA" || len(ss.rcpts) == 1) {
		to = ss.rcpts[0]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s from %s: %s;", id, action, what, ss.client, text)
	// As Postfix, the addresses are logged in the external form of
	// their internal form (the reply keeps the client's text).
	if ss.sender != nil {
		fmt.Fprintf(&b, " from=<%s>", addr.External(addr.Unquote(*ss.sender)))
	}
	if to != "" {
		fmt.Fprintf(&b, " to=<%s>", addr.External(addr.Unquote(to)))
	}
	fmt.Fprintf(&b, " proto=%s%s", ss.proto, ss.heloLog())
	ss.s.log.Info("%s", b.String())
}

// bareLFReply is smtpd_forbid_bare_newline = reject's answer.
func (ss *session) bareLFReply() string {
	code := ss.s.cfg.Int("smtpd_forbid_bare_newline_reject_code")
	if code < 400 || code > 599 {
		code = 550
	}
	return fmt.Sprintf("%d %c.5.2 %s Error: bare <LF> received", code, '0'+code/100, ss.s.hostname)
}

type handler func(ss *session, arg string) (bool, error)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"helo": (*session).heloCmd, "ehlo": (*session).ehloCmd,
		"mail": (*session).mail, "rcpt": (*session).rcpt, "data": (*session).data,
		"bdat": (*session).bdat, "rset": (*session).rset, "noop": (*session).noop,
		"starttls": (*session).starttls, "vrfy": (*session).vrfy, "etrn": (*session).etrn, "quit": (*session).quitCmd,
	}
}

// forbidden reports whether a command is not SMTP at all: a message
// header ("Subject: x") or one of smtpd_forbidden_commands (a command
// name, or a match in a table such as regexp:{{/^[^A-Z]/ Bogus}}), as a
// web request or message text sent as commands would be.
func (ss *session) forbidden(line string) bool {
	verb, _, _ := strings.Cut(line, " ")
	if isHeaderName(strings.TrimRight(line, " \t")) {
		return true
	}
	for _, f := range ss.s.cfg.List("smtpd_forbidden_commands") {
		if !strings.Contains(f, ":") {
			if strings.EqualFold(f, verb) {
				return true
			}
			continue
		}
		if _, found, err := ss.s.tables.Lookup(f, verb); err == nil && found {
			return true
		}
	}
	return false
}

// isHeaderName reports whether s starts with a header label "Name:".
func isHeaderName(s string) bool {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return false
	}
	for _, c := range []byte(strings.TrimRight(s[:i], " \t")) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func (ss *session) unknown(string) (bool, error) {
	ss.fail("500 5.5.2 Error: command not recognized")
	return false, nil
}

func (ss *session) heloCmd(arg string) (bool, error) {
	if arg == "" {
		ss.fail("501 Syntax: HELO hostname")
		return false, nil
	}
	if ss.heloRejected(arg) {
		return false, nil
	}
	ss.reset()
	ss.helo, ss.proto = arg, "SMTP"
	ss.reply("250 %s", ss.s.hostname)
	return true, nil
}

// heloRejected applies the HELO restrictions to name at HELO or EHLO
// (smtpd_delay_reject = no); a rejected name leaves the session as it
// was.
func (ss *session) heloRejected(name string) bool {
	saved := ss.helo
	ss.helo = name // the reject is logged with helo=<name>
	defer func() { ss.helo = saved }()
	return ss.rejectNow(ss.listCheck("smtpd_helo_restrictions")) != ""
}

// ehloKeywords are the EHLO keywords Postfix advertises, in its order.
func (ss *session) ehloKeywords() []string {
	kw := []string{"PIPELINING"}
	if ss.s.sizeLimit > 0 {
		kw = append(kw, "SIZE "+strconv.FormatInt(ss.s.sizeLimit, 10))
	} else {
		kw = append(kw, "SIZE")
	}
	kw = append(kw, "VRFY", "ETRN")
	if ss.s.tls != nil && !ss.tlsOn {
		kw = append(kw, "STARTTLS")
	}
	kw = append(kw, "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING")
	var out []string
	for _, k := range kw {
		name, _, _ := strings.Cut(k, " ")
		if !ss.s.discard[name] {
			out = append(out, k)
		}
	}
	return out
}

func (ss *session) ehloCmd(arg string) (bool, error) {
	if arg == "" {
		ss.fail("501 Syntax: EHLO hostname")
		return false, nil
	}
	if ss.heloRejected(arg) {
		return false, nil
	}
	ss.reset()
	ss.helo, ss.proto = arg, "ESMTP"
	kw := ss.ehloKeywords()
	if len(kw) == 0 {
		ss.reply("250 %s", ss.s.hostname)
		return true, nil
	}
	fmt.Fprintf(ss.w, "250-%s\r\n", ss.s.hostname)
	for i, k := range kw {
		sep := "-"
		if i == len(kw)-1 {
			sep = " "
		}
		fmt.Fprintf(ss.w, "250%s%s\r\n", sep, k)
	}
	if ss.r.Buffered() == 0 {
		ss.w.Flush()
	}
	return true, nil
}

func (ss *session) reset() {
	if ss.file != nil {
		ss.file.Abort()
		ss.file = nil
	}
	ss.sender = nil
	ss.rcpts = nil
	ss.dsn = nil
	ss.attrs = nil
	ss.smtputf8 = false
	ss.hold = false
	ss.bdatBuf = nil
	ss.size = 0
}

// queueID is what a log line about the transaction starts with: the
// queue ID once the queue file exists, else NOQUEUE.
func (ss *session) queueID() string {
	if ss.file != nil && ss.file.ID() != "" {
		return ss.file.ID()
	}
	return "NOQUEUE"
}

func (ss *session) rset(arg string) (bool, error) {
	if arg != "" {
		ss.fail("501 5.5.4 Syntax: RSET")
		return false, nil
	}
	ss.reset()
	ss.reply("250 2.0.0 Ok")
	return true, nil
}

func (ss *session) noop(string) (bool, error) {
	ss.reply("250 2.0.0 Ok")
	return true, nil
}

func (ss *session) quitCmd(string) (bool, error) {
	ss.reply("221 2.0.0 Bye")
	ss.w.Flush()
	return true, errClosed
}

func (ss *session) vrfy(arg string) (bool, error) {
	if arg == "" {
		ss.fail("501 5.5.4 Syntax: VRFY address [SMTPUTF8]")
		return false, nil
	}
	ss.reply("252 2.0.0 %s", strings.Trim(arg, "<>"))
	return true, nil
}

func (ss *session) etrn(arg string) (bool, error) {
	if ss.helo == "" && ss.s.heloNeeded {
		ss.fail("503 Error: send HELO/EHLO first")
		return false, nil
	}
	if ss.sender != nil {
		ss.fail("503 Error: MAIL transaction in progress")
		return false, nil
	}
	if arg == "" {
		ss.fail("500 Syntax: ETRN domain")
		return false, nil
	}
	ss.s.log.Warning("reject: ETRN %s... from %s", arg, ss.client)
	ss.fail("459 <%s>: service unavailable", arg)
	return false, nil
}

// parsePath splits "FROM:<addr> params" after the keyword; ok is false
// on a syntax error.
func parsePath(arg, keyword string) (address string, params []string, ok bool) {
	if len(arg) < len(keyword) || !strings.EqualFold(arg[:len(keyword)], keyword) {
		return "", nil, false
	}
	rest := strings.TrimLeft(arg[len(keyword):], " ")
	if rest == "" {
		return "", nil, false
	}
	var end int
	if rest[0] == '<' {
		quoted := false
		end = -1
		for i := 1; i < len(rest); i++ {
			switch {
			case rest[i] == '\\' && quoted:
				i++
			case rest[i] == '"':
				quoted = !quoted
			case rest[i] == '>' && !quoted:
				end = i + 1
			}
			if end > 0 {
				break
			}
		}
		if end < 0 {
			return "", nil, false
		}
		address = rest[1 : end-1]
	} else {
		end = strings.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		address = rest[:end]
	}
	if strings.ContainsAny(address, "<>\x00\r\n") {
		return "", nil, false
	}
	return address, strings.Fields(rest[end:]), true
}

// stripRoute drops an RFC 821 source route "@a,@b:" before the mailbox.
func stripRoute(a string) string {
	if strings.HasPrefix(a, "@") {
		if i := strings.IndexByte(a, ':'); i >= 0 {
			return a[i+1:]
		}
	}
	return a
}

func (ss *session) mail(arg string) (bool, error) {
	if ss.helo == "" && ss.s.heloNeeded {
		ss.fail("503 5.5.1 Error: send HELO/EHLO first")
		return false, nil
	}
	if ss.sender != nil {
		ss.fail("503 5.5.1 Error: nested MAIL command")
		return false, nil
	}
	if ss.s.tlsRequired && !ss.tlsOn {
		ss.fail("530 5.7.0 Must issue a STARTTLS command first")
		return false, nil
	}
	a, params, ok := parsePath(arg, "FROM:")
	if !ok {
		ss.fail("501 5.5.4 Syntax: MAIL FROM:<address>")
		return false, nil
	}
	attrs := map[string]string{}
	smtputf8 := false
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToUpper(k) {
		case "SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				ss.fail("501 5.5.4 Bad message size syntax")
				return false, nil
			}
			ss.size = n
		case "BODY":
			u := strings.ToUpper(v)
			if u != "7BIT" && u != "8BITMIME" {
				ss.fail("555 5.5.4 Unsupported option: %s", p)
				return false, nil
			}
			attrs[queue.AttrBody] = u
		case "SMTPUTF8":
			smtputf8 = true
			attrs[queue.AttrSMTPUTF8] = "1"
		case "RET":
			u := strings.ToUpper(v)
			if u != "FULL" && u != "HDRS" {
				ss.fail("501 5.5.4 Bad RET parameter syntax")
				return false, nil
			}
			attrs[queue.AttrRET] = u
		case "ENVID":
			id, ok := xtextDecode(v)
			if !ok || id == "" {
				ss.fail("501 5.5.4 Bad ENVID parameter syntax")
				return false, nil
			}
			attrs[queue.AttrENVID] = id
		default:
			ss.fail("555 5.5.4 Unsupported option: %s", p)
			return false, nil
		}
	}
	sender := stripRoute(a)
	if ss.s.sizeLimit > 0 && ss.size > ss.s.sizeLimit {
		ss.sender = &sender
		ss.logReject(ss.queueID(), "MAIL", "552 5.3.4 Message size exceeds fixed limit", "")
		ss.sender = nil
		ss.fail("552 5.3.4 Message size exceeds fixed limit")
		return false, nil
	}
	ss.sender = &sender
	if ss.rejectNow(func() *result { return ss.checkSender("") }) != "" {
		ss.sender = nil
		ss.hold = false // nor does a HOLD stay
		return false, nil
	}
	ss.senderDefer = ss.deferIfPermit
	ss.rcpts = nil
	ss.attrs, ss.smtputf8 = attrs, smtputf8
	ss.reply("250 2.1.0 Ok")
	return true, nil
}

func (ss *session) rcpt(arg string) (bool, error) {
	if ss.sender == nil {
		ss.fail("503 5.5.1 Error: need MAIL command")
		return false, nil
	}
	a, params, ok := parsePath(arg, "TO:")
	if !ok || a == "" {
		ss.fail("501 5.5.4 Syntax: RCPT TO:<address>")
		return false, nil
	}
	var dsn cleanup.RecipientDSN
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToUpper(k) {
		case "NOTIFY":
			if !validNotify(v) {
				ss.fail("501 5.5.4 Error: Bad NOTIFY parameter syntax")
				return false, nil
			}
			dsn.Notify = strings.ToUpper(v)
		case "ORCPT":
			typ, x, _ := strings.Cut(v, ";")
			o, ok := xtextDecode(x)
			if typ == "" || !ok || o == "" {
				ss.fail("501 5.5.4 Error: Bad ORCPT parameter syntax")
				return false, nil
			}
			dsn.ORCPT = typ + ";" + o
		default:
			ss.fail("555 5.5.4 Unsupported option: %s", p)
			return false, nil
		}
	}
	if ss.s.rcptLimit > 0 && len(ss.rcpts) >= ss.s.rcptLimit {
		ss.reply("452 4.5.3 Error: too many recipients")
		return false, nil
	}
	rcpt := stripRoute(a)
	if r := ss.checkRecipient(rcpt); r != nil {
		ss.logReject(ss.queueID(), "RCPT", r.text, rcpt)
		ss.fail("%s", r.text)
		return false, nil
	}
	if ss.file == nil {
		// Postfix's smtpd opens the queue file here.
		f, err := ss.s.queue.Open()
		if err != nil {
			ss.s.log.Warning("queue file write error: %v", err)
			ss.fail("451 4.3.0 Error: queue file write error")
			return false, nil
		}
		ss.file = f
		if f.ID() != "" {
			ss.s.log.Info("%s: client=%s", f.ID(), ss.client)
		}
	}
	if dsn.ORCPT == "" {
		dsn.ORCPT = "rfc822;" + rcpt // as Postfix records it
	}
	ss.rcpts = append(ss.rcpts, rcpt)
	ss.dsn = append(ss.dsn, dsn)
	ss.reply("250 2.1.5 Ok")
	return true, nil
}

// receivedFor is the Received: header smtpd adds, as Postfix writes it.
func (ss *session) receivedFor(id string) string {
	from := ss.helo
	if from == "" {
		from = ss.name
	}
	proto := ss.proto
	if ss.smtputf8 {
		proto = "UTF8" + strings.TrimPrefix(proto, "E") // ESMTP → UTF8SMTP, as Postfix writes it
	}
	tlsDetails := ""
	if ss.tlsOn {
		proto += "S" // RFC 3848
		if ss.s.cfg.Bool("smtpd_tls_received_header") {
			tlsDetails = fmt.Sprintf("\n\t(using %s\n\t %s)\n\t(No client certificate requested)", ss.tlsInfo[0], ss.tlsInfo[1])
		}
	}
	b := fmt.Sprintf("from %s (%s [%s])%s\n\tby %s (Postfix) with %s", from, ss.name, ss.ip, tlsDetails, ss.s.hostname, proto)
	if id != "" {
		b += " id " + id
	}
	date := time.Now().Format("Mon, _2 Jan 2006 15:04:05 -0700 (MST)")
	if len(ss.rcpts) == 1 {
		return b + "\n\tfor <" + ss.rcpts[0] + ">; " + date
	}
	return b + ";\n\t" + date
}

// queueMessage hands the message read from content to cleanup and
// answers the client.
func (ss *session) queueMessage(content io.Reader, size string) bool {
	sub, f := ss.submission()
	id, err := ss.s.queue.Queue(f, sub, content)
	return ss.queued(id, err, size)
}

// submission is the transaction's envelope for cleanup, and its queue
// file, which the session hands over.
func (ss *session) submission() (*cleanup.Submission, Pending) {
	attrs := map[string]string{queue.AttrClientName: ss.name, queue.AttrClientAddr: ss.ip,
		queue.AttrHELO: ss.helo, queue.AttrProtocol: ss.proto}
	for k, v := range ss.attrs {
		attrs[k] = v
	}
	f := ss.file
	ss.file = nil // Queue finishes or removes it
	return &cleanup.Submission{
		Sender:      *ss.sender,
		Recipients:  ss.rcpts,
		DSN:         ss.dsn,
		Attrs:       attrs,
		Hold:        ss.hold,
		UID:         -1,
		ReceivedFor: ss.receivedFor,
	}, f
}

// queued answers the client once cleanup has queued the message (its
// file synced to disk) or refused it; the transaction is over.
func (ss *session) queued(id string, err error, size string) bool {
	ss.reset()
	var rej *cleanup.Reject
	switch {
	case errors.As(err, &rej):
		ss.fail("%d %s %s", rej.Code, rej.DSN, rej.Text)
		return false
	case err != nil:
		ss.s.log.Warning("queue file write error: %v", err)
		ss.fail("451 4.3.0 Error: queue file write error")
		return false
	}
	if id == "" { // sendmail -bs through postdrop: the ID is not known here
		ss.reply("250 2.0.0 Ok: %squeued", size)
		return true
	}
	ss.reply("250 2.0.0 Ok: %squeued as %s", size, id)
	return true
}

// errAbandoned stops cleanup when the client's message is not to be
// queued (too big, or the connection was lost).
var errAbandoned = errors.New("message abandoned")

func (ss *session) data(arg string) (bool, error) {
	if arg != "" {
		ss.fail("501 5.5.4 Syntax: DATA")
		return false, nil
	}
	if ss.sender == nil {
		ss.fail("503 5.5.1 Error: need RCPT command")
		return false, nil
	}
	if len(ss.rcpts) == 0 {
		ss.fail("554 5.5.1 Error: no valid recipients")
		return false, nil
	}
	if r := ss.restrict("smtpd_data_restrictions", ""); r != nil && !r.permit {
		ss.logReject(ss.queueID(), "DATA", r.text, "")
		ss.fail("%s", r.text)
		return false, nil
	}
	ss.reply("354 End data with <CR><LF>.<CR><LF>")
	// The message streams into cleanup as it arrives.
	pr, pw := io.Pipe()
	type outcome struct {
		id  string
		err error
	}
	res := make(chan outcome, 1)
	id := ss.queueID()
	sub, f := ss.submission()
	go func() {
		id, err := ss.s.queue.Queue(f, sub, pr)
		pr.CloseWithError(errAbandoned) // cleanup stopped early: the rest is drained
		res <- outcome{id, err}
	}()
	bw := bufio.NewWriterSize(pw, 64*1024)
	ss.bigReader()
	var size int64
	tooBig, sawBare := false, false
	prevBare := false // the line before ended in a bare LF
	for {
		line, bare, err := ss.readDataLine()
		if err != nil {
			pw.CloseWithError(errAbandoned)
			<-res
			ss.where = fmt.Sprintf("DATA (%d bytes)", size)
			return false, err
		}
		sawBare = sawBare || bare
		// Postfix ignores extra CRs here: ".\r\r\n" ends DATA too. With
		// smtpd_forbid_bare_newline only <CR><LF>.<CR><LF> ends it.
		if strings.TrimRight(line, "\r") == "." && (ss.bareLF == "" || (!bare && !prevBare)) {
			break
		}
		prevBare = bare
		if strings.HasPrefix(line, ".") {
			line = line[1:]
		}
		size += int64(len(line)) + 2
		if ss.s.sizeLimit > 0 && size > ss.s.sizeLimit {
			tooBig = true
		}
		if !tooBig {
			bw.WriteString(line) // an error shows in Process's result
			bw.WriteByte('\n')
		}
	}
	ss.where = "END-OF-MESSAGE"
	if sawBare && ss.bareLF == "reject" {
		pw.CloseWithError(errAbandoned)
		<-res
		ss.logReject(id, "END-OF-MESSAGE", "bare <LF> received", "")
		ss.reset()
		ss.fail("%s", ss.bareLFReply())
		return false, nil
	}
	if tooBig {
		pw.CloseWithError(errAbandoned)
		<-res
		ss.reset()
		ss.reply("552 5.3.4 Error: message file too big") // not counted as an error, as in Postfix
		return false, nil
	}
	bw.Flush()
	pw.Close()
	out := <-res
	return ss.queued(out.id, out.err, ""), nil
}

// readDataLine reads one message line of any length; bare reports a
// line ended by LF alone.
func (ss *session) readDataLine() (line string, bare bool, err error) {
	ss.conn.SetReadDeadline(time.Now().Add(ss.s.timeout))
	line, err = ss.r.ReadString('\n')
	if err != nil {
		return "", false, err
	}
	line = strings.TrimSuffix(line, "\n")
	bare = !strings.HasSuffix(line, "\r")
	return strings.TrimSuffix(line, "\r"), bare, nil
}

func (ss *session) bdat(arg string) (bool, error) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 || (len(f) == 2 && !strings.EqualFold(f[1], "LAST")) {
		ss.fail("501 5.5.4 Syntax: BDAT count [LAST]")
		return false, nil
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n < 0 {
		ss.fail("501 5.5.4 Syntax: BDAT count [LAST]")
		return false, nil
	}
	ss.conn.SetReadDeadline(time.Now().Add(ss.s.timeout))
	var chunk bytes.Buffer
	if _, err := io.CopyN(&chunk, ss.r, n); err != nil {
		if chunk.Len() > 0 {
			ss.where = fmt.Sprintf("BDAT (%d bytes)", chunk.Len())
		}
		return false, err
	}
	if ss.sender == nil {
		ss.fail("503 5.5.1 Error: need MAIL command")
		return false, nil
	}
	if len(ss.rcpts) == 0 {
		ss.fail("554 5.5.1 Error: no valid recipients")
		return false, nil
	}
	ss.bdatBuf = append(ss.bdatBuf, chunk.Bytes()...)
	if ss.s.sizeLimit > 0 && int64(len(ss.bdatBuf)) > ss.s.sizeLimit {
		ss.bdatBuf = nil
		ss.reset()
		ss.fail("552 5.3.4 Error: message file too big")
		return false, nil
	}
	if len(f) == 1 {
		ss.reply("250 2.0.0 Ok: %d bytes", len(ss.bdatBuf))
		return true, nil
	}
	total := len(ss.bdatBuf)
	content := bytes.ReplaceAll(ss.bdatBuf, []byte("\r\n"), []byte("\n"))
	ss.bdatBuf = nil
	return ss.queueMessage(bytes.NewReader(content), fmt.Sprintf("%d bytes ", total)), nil
}

func (ss *session) starttls(arg string) (bool, error) {
	switch {
	case ss.s.tls == nil:
		ss.fail("502 5.5.1 Error: command not implemented")
		return false, nil
	case arg != "":
		ss.fail("501 5.5.4 Syntax: STARTTLS")
		return false, nil
	case ss.tlsOn:
		ss.fail("554 5.5.1 Error: TLS already active")
		return false, nil
	}
	ss.reply("220 2.0.0 Ready to start TLS")
	ss.w.Flush()
	if ss.r.Buffered() > 0 {
		// Commands sent before the handshake would be taken as
		// encrypted: drop the connection (the STARTTLS injection bug).
		return false, fmt.Errorf("plaintext after STARTTLS")
	}
	if err := ss.handshake(); err != nil {
		return false, err
	}
	ss.helo = "" // RFC 3207: the client starts over with EHLO
	ss.reset()
	return true, nil
}

// xtextDecode decodes RFC 3461 xtext ("a+2Bb" is "a+b"); ok is false for
// a malformed one.
func xtextDecode(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", false
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil || strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] {
				return "", false
			}
			b.WriteByte(byte(n))
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// validNotify reports whether v is an RFC 3461 NOTIFY list: NEVER alone,
// or any of SUCCESS, FAILURE and DELAY.
func validNotify(v string) bool {
	if v == "" {
		return false
	}
	words := strings.Split(strings.ToUpper(v), ",")
	for _, w := range words {
		switch w {
		case "NEVER":
			if len(words) > 1 {
				return false
			}
		case "SUCCESS", "FAILURE", "DELAY":
		default:
			return false
		}
	}
	return true
}

// heloLog is the " helo=<name>" of a reject log line; Postfix leaves it
// out when the client has not said HELO or EHLO.
func (ss *session) heloLog() string {
	if ss.helo == "" {
		return ""
	}
	return " helo=<" + ss.helo + ">"
}
