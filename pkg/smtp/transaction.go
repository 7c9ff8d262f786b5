package smtp

import (
	"fmt"

	"postdove/pkg/delivery"
	"strconv"
	"strings"
	"time"
)

// transaction sends msg's recipients that are not done yet over s. It
// returns a failure that ends the session (the recipients it did not
// finish get it), and retry when a cached session turned out dead before
// anything happened.
func (c *Client) transaction(s *session, msg *delivery.Request, results []Result, done []bool,
	finish func(int, Status, string, string, string, time.Duration), setup time.Duration, reused bool) (*failure, bool) {
	st := c.Settings
	relay := s.relay()
	said := func(rep Reply, what string) string {
		return fmt.Sprintf("host %s said: %s (in reply to %s)", s.hostAddr(), rep.Text(), what)
	}
	repStatus := func(rep Reply) Status {
		if rep.Class() == 5 {
			return Bounced
		}
		return Deferred
	}
	var todo []int
	for i := range results {
		if !done[i] {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return nil, false
	}

	// RFC 1870: a message the server announced it cannot take bounces.
	if v, ok := s.ext["SIZE"]; ok {
		if limit, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && limit > 0 && msg.Size > limit {
			for _, i := range todo {
				finish(i, Bounced, "5.3.4", fmt.Sprintf("message size %d exceeds size limit %d of server %s",
					msg.Size, limit, s.hostAddr()), relay, setup)
			}
			return nil, false
		}
	}

	_, dsn := s.ext["DSN"]
	_, pipelining := s.ext["PIPELINING"]
	var mail strings.Builder
	fmt.Fprintf(&mail, "MAIL FROM:<%s>", msg.Sender)
	if _, ok := s.ext["SIZE"]; ok {
		fmt.Fprintf(&mail, " SIZE=%d", msg.Size)
	}
	if _, ok := s.ext["8BITMIME"]; ok && msg.Body == "8BITMIME" {
		mail.WriteString(" BODY=8BITMIME")
	}
	if dsn {
		if msg.ENVID != "" {
			mail.WriteString(" ENVID=" + xtext(msg.ENVID))
		}
		if msg.RET != "" {
			mail.WriteString(" RET=" + msg.RET)
		}
	}
	if _, ok := s.ext["SMTPUTF8"]; ok && msg.SMTPUTF8 {
		mail.WriteString(" SMTPUTF8")
	}
	rcptCmd := func(r delivery.Recipient) string {
		line := "RCPT TO:<" + r.Address + ">"
		if dsn {
			if r.Notify != "" {
				line += " NOTIFY=" + r.Notify
			}
			switch {
			case r.ORCPT != "":
				// The queue file holds it decoded, as Postfix's does.
				typ, a, _ := strings.Cut(r.ORCPT, ";")
				line += " ORCPT=" + typ + ";" + xtext(a)
			case r.Orig != "":
				line += " ORCPT=rfc822;" + xtext(r.Orig)
			default:
				line += " ORCPT=rfc822;" + xtext(r.Address)
			}
		}
		return line
	}

	// RFC 2920: with PIPELINING, MAIL, every RCPT and DATA go in one
	// write; otherwise one command at a time.
	s.send(0, "", "%s", mail.String())
	if !pipelining {
		rep, f := s.readAfterFlush(st.MailTimeout, "sending MAIL FROM")
		if f != nil {
			return f, reused
		}
		if rep.Class() != 2 {
			s.rset()
			return &failure{text: said(rep, "MAIL FROM command"), dsn: rep.Status(), next: rep.Class() == 4}, false
		}
	}
	for _, i := range todo {
		s.send(0, "", "%s", rcptCmd(results[i].Recipient))
		if !pipelining {
			rep, f := s.readAfterFlush(st.RcptTimeout, "sending RCPT TO")
			if f != nil {
				return f, false
			}
			if rep.Class() != 2 {
				finish(i, repStatus(rep), rep.Status(), said(rep, "RCPT TO command"), relay, setup)
			} else if msg.Verify {
				finish(i, Sent, rep.Status(), rep.Text(), relay, setup)
			}
		}
	}
	var accepted []int
	if msg.Verify {
		// sendmail -bv: the RCPT replies are the answer; no DATA.
		if pipelining {
			rep, f := s.readAfterFlush(st.MailTimeout, "sending MAIL FROM")
			if f != nil {
				return f, reused
			}
			for _, i := range todo {
				r, f := s.read(st.RcptTimeout, "sending RCPT TO")
				if f != nil {
					return f, false
				}
				if rep.Class() != 2 {
					continue
				}
				if r.Class() == 2 {
					finish(i, Sent, r.Status(), r.Text(), relay, setup)
				} else {
					finish(i, repStatus(r), r.Status(), said(r, "RCPT TO command"), relay, setup)
				}
			}
			if rep.Class() != 2 {
				s.rset()
				return &failure{text: said(rep, "MAIL FROM command"), dsn: rep.Status(), next: rep.Class() == 4}, false
			}
		}
		s.rset()
		return nil, false
	}
	if pipelining {
		s.send(0, "", "DATA")
		if f := s.flush(st.MailTimeout, "sending MAIL FROM"); f != nil {
			return f, reused
		}
		rep, f := s.read(st.MailTimeout, "sending MAIL FROM")
		if f != nil {
			return f, reused
		}
		mailOK := rep.Class() == 2
		mailRep := rep
		for _, i := range todo {
			rep, f := s.read(st.RcptTimeout, "sending RCPT TO")
			if f != nil {
				return f, false
			}
			switch {
			case !mailOK:
			case rep.Class() == 2:
				accepted = append(accepted, i)
			default:
				finish(i, repStatus(rep), rep.Status(), said(rep, "RCPT TO command"), relay, setup)
			}
		}
		rep, f = s.read(st.DataInit, "sending DATA command")
		if f != nil {
			return f, false
		}
		if rep.Code == 354 && (!mailOK || len(accepted) == 0) {
			// DATA went through with no recipient: an empty message
			// the server will refuse.
			s.send(0, "", ".")
			if _, f := s.readAfterFlush(st.DataDone, "sending end of data -- message may be sent more than once"); f != nil {
				return f, false
			}
		}
		if !mailOK {
			s.rset()
			return &failure{text: said(mailRep, "MAIL FROM command"), dsn: mailRep.Status(), next: mailRep.Class() == 4}, false
		}
		if len(accepted) == 0 {
			s.rset()
			return nil, false
		}
		if rep.Code != 354 {
			for _, i := range accepted {
				finish(i, repStatus(rep), rep.Status(), said(rep, "DATA command"), relay, setup)
			}
			s.rset()
			return nil, false
		}
	} else {
		for _, i := range todo {
			if !done[i] {
				accepted = append(accepted, i)
			}
		}
		if len(accepted) == 0 {
			s.rset()
			return nil, false
		}
		s.send(0, "", "DATA")
		rep, f := s.readAfterFlush(st.DataInit, "sending DATA command")
		if f != nil {
			return f, false
		}
		if rep.Code != 354 {
			for _, i := range accepted {
				finish(i, repStatus(rep), rep.Status(), said(rep, "DATA command"), relay, setup)
			}
			s.rset()
			return nil, false
		}
	}

	// The content, then the end of data (RFC 5321 section 4.1.1.4).
	body, err := msg.Open()
	if err != nil {
		s.healthy = false
		return &failure{text: "error reading message file", dsn: "4.3.0"}, false
	}
	s.wtimeout = st.DataXfer
	err = copyData(s.w, body)
	body.Close()
	if err != nil {
		s.healthy = false
		if isConnReset(err) || isTimeout(err) {
			return s.ioFailure(err, "sending message body"), false
		}
		return &failure{text: "error reading message file", dsn: "4.3.0"}, false
	}
	const whileDot = "sending end of data -- message may be sent more than once"
	if f := s.flush(st.DataXfer, "sending message body"); f != nil {
		return f, false
	}
	replies := 1
	if s.lmtp {
		replies = len(accepted) // RFC 2033 section 4.2: one per recipient
	}
	for k := 0; k < replies; k++ {
		rep, f := s.read(st.DataDone, whileDot)
		if f != nil {
			return f, false
		}
		targets := accepted
		if s.lmtp {
			targets = accepted[k : k+1]
		}
		for _, i := range targets {
			if rep.Class() == 2 {
				finish(i, Sent, rep.Status(), rep.Text(), relay, setup)
			} else {
				finish(i, repStatus(rep), rep.Status(), said(rep, "end of DATA command"), relay, setup)
			}
		}
	}
	return nil, false
}

// readAfterFlush flushes the commands buffered and reads one reply.
func (s *session) readAfterFlush(timeout time.Duration, while string) (Reply, *failure) {
	if f := s.flush(timeout, while); f != nil {
		return Reply{}, f
	}
	return s.read(timeout, while)
}

// rset ends an aborted transaction; a session whose RSET fails is not
// reused.
func (s *session) rset() {
	if !s.healthy {
		return
	}
	rep, f := s.cmd(s.c.Settings.RsetTimeout, "sending RSET", "RSET")
	if f != nil || rep.Class() != 2 {
		s.healthy = false
	}
}

// xtext encodes s as RFC 3461 section 4 xtext.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
