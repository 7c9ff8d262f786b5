package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"postdove/pkg/cleanup"
)

// commandNames is the order Postfix's disconnect line counts commands in.
var commandNames = []string{"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy", "etrn", "quit", "unknown"}

type session struct {
	s      *Server
	ctx    context.Context
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
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
	// size is the last MAIL SIZE= value; Postfix keeps it after a
	// rejected MAIL command until the transaction is reset.
	size int64

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
	ss := &session{s: s, ctx: ctx, conn: c, r: bufio.NewReaderSize(c, 8192), w: bufio.NewWriter(c),
		ip: ip, where: "CONNECT", proto: "SMTP", count: map[string][2]int{}}
	ss.name = s.clientName(ctx, ip)
	ss.client = ss.name + "[" + ip + "]"
	s.log.Info("connect from %s", ss.client)
	ss.run()
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
	fmt.Fprintf(ss.w, format+"\r\n", args...)
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

// readLine reads one line without its CR LF (a bare LF ends it too),
// keeping at most max bytes of it.
func (ss *session) readLine(max int) (string, error) {
	ss.w.Flush()
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
			return "", err
		}
		break
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	return string(buf), nil
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
	ss.reply("220 %s", ss.s.banner)
	for !ss.quit {
		line, err := ss.readLine(4096)
		if err != nil {
			ss.lost(err)
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
			if ss.forbidden(line) {
				c := ss.count[verb]
				c[1]++
				ss.count[verb] = c
				ss.s.log.Warning("non-SMTP command from %s: %s", ss.client, line)
				ss.reply("221 2.7.0 Error: I can break rules, too. Goodbye.")
				ss.w.Flush()
				return
			}
		} else {
			ss.where = strings.ToUpper(verb)
		}
		c := ss.count[verb]
		c[1]++
		ok, err := h(ss, strings.TrimLeft(arg, " "))
		if ok {
			c[0]++
		}
		ss.count[verb] = c
		if err != nil {
			if !errors.Is(err, errClosed) {
				ss.lost(err)
			}
			return
		}
	}
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
	ss.reset()
	ss.helo, ss.proto = arg, "SMTP"
	ss.reply("250 %s", ss.s.hostname)
	return true, nil
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
	ss.sender = nil
	ss.rcpts = nil
	ss.bdatBuf = nil
	ss.size = 0
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
			if u := strings.ToUpper(v); u != "7BIT" && u != "8BITMIME" {
				ss.fail("501 5.5.4 Unsupported BODY parameter value")
				return false, nil
			}
		case "SMTPUTF8":
		case "RET":
			if u := strings.ToUpper(v); u != "FULL" && u != "HDRS" {
				ss.fail("501 5.5.4 Bad RET parameter syntax")
				return false, nil
			}
		case "ENVID":
			if v == "" {
				ss.fail("501 5.5.4 Bad ENVID parameter syntax")
				return false, nil
			}
		default:
			ss.fail("555 5.5.4 Unsupported option: %s", p)
			return false, nil
		}
	}
	sender := stripRoute(a)
	if ss.s.sizeLimit > 0 && ss.size > ss.s.sizeLimit {
		ss.s.log.Info("NOQUEUE: reject: MAIL from %s: 552 5.3.4 Message size exceeds fixed limit; from=<%s> proto=%s%s",
			ss.client, sender, ss.proto, ss.heloLog())
		ss.fail("552 5.3.4 Message size exceeds fixed limit")
		return false, nil
	}
	ss.sender = &sender
	ss.rcpts = nil
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
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToUpper(k) {
		case "NOTIFY", "ORCPT":
			if v == "" {
				ss.fail("501 5.5.4 Bad %s parameter syntax", strings.ToUpper(k))
				return false, nil
			}
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
		ss.s.log.Info("NOQUEUE: reject: RCPT from %s: %s; from=<%s> to=<%s> proto=%s%s",
			ss.client, r.text, *ss.sender, rcpt, ss.proto, ss.heloLog())
		ss.fail("%s", r.text)
		return false, nil
	}
	ss.rcpts = append(ss.rcpts, rcpt)
	ss.reply("250 2.1.5 Ok")
	return true, nil
}

// receivedFor is the Received: header smtpd adds, as Postfix writes it.
func (ss *session) receivedFor(id string) string {
	from := ss.helo
	if from == "" {
		from = ss.name
	}
	b := fmt.Sprintf("from %s (%s [%s])\n\tby %s (Postfix) with %s id %s", from, ss.name, ss.ip, ss.s.hostname, ss.proto, id)
	date := time.Now().Format("Mon, _2 Jan 2006 15:04:05 -0700 (MST)")
	if len(ss.rcpts) == 1 {
		return b + "\n\tfor <" + ss.rcpts[0] + ">; " + date
	}
	return b + ";\n\t" + date
}

// queueMessage hands the message read from content to cleanup and
// answers the client.
func (ss *session) queueMessage(content io.Reader, size string) bool {
	id, err := ss.s.cleanup.Process(ss.submission(), content)
	return ss.queued(id, err, size)
}

// submission is the transaction's envelope for cleanup.
func (ss *session) submission() *cleanup.Submission {
	return &cleanup.Submission{
		Sender:      *ss.sender,
		Recipients:  ss.rcpts,
		UID:         -1,
		ReceivedFor: ss.receivedFor,
		Queued: func(id string) {
			ss.s.log.Info("%s: client=%s", id, ss.client)
		},
	}
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
		ss.s.log.Info("NOQUEUE: reject: DATA from %s: %s; from=<%s> to=<%s> proto=%s%s",
			ss.client, r.text, *ss.sender, ss.rcpts[len(ss.rcpts)-1], ss.proto, ss.heloLog())
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
	sub := ss.submission()
	go func() {
		id, err := ss.s.cleanup.Process(sub, pr)
		pr.CloseWithError(errAbandoned) // cleanup stopped early: the rest is drained
		res <- outcome{id, err}
	}()
	bw := bufio.NewWriterSize(pw, 64*1024)
	var size int64
	tooBig := false
	for {
		line, err := ss.readDataLine()
		if err != nil {
			pw.CloseWithError(errAbandoned)
			<-res
			ss.where = fmt.Sprintf("DATA (%d bytes)", size)
			return false, err
		}
		if strings.TrimRight(line, "\r") == "." {
			break // Postfix ignores extra CRs here: ".\r\r\n" ends DATA too
		}
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

// readDataLine reads one message line of any length.
func (ss *session) readDataLine() (string, error) {
	ss.conn.SetReadDeadline(time.Now().Add(ss.s.timeout))
	line, err := ss.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	return line, nil
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
	tc := tls.Server(ss.conn, ss.s.tls)
	tc.SetDeadline(time.Now().Add(ss.s.timeout))
	if err := tc.HandshakeContext(ss.ctx); err != nil {
		ss.s.log.Warning("TLS library problem: %v", err)
		return false, err
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	bits := 256
	if strings.Contains(tls.CipherSuiteName(st.CipherSuite), "128") {
		bits = 128
	}
	ss.s.log.Info("Anonymous TLS connection established from %s: %s with cipher %s (%d/%d bits)",
		ss.client, tlsVersion(st.Version), tls.CipherSuiteName(st.CipherSuite), bits, bits)
	ss.conn = tc
	ss.r = bufio.NewReaderSize(tc, 8192)
	ss.w = bufio.NewWriter(tc)
	ss.tlsOn = true
	ss.helo = "" // RFC 3207: the client starts over with EHLO
	ss.reset()
	return true, nil
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	}
	return "TLSv1"
}

// heloLog is the " helo=<name>" of a reject log line; Postfix leaves it
// out when the client has not said HELO or EHLO.
func (ss *session) heloLog() string {
	if ss.helo == "" {
		return ""
	}
	return " helo=<" + ss.helo + ">"
}
