package sendmail

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"postdove/pkg/postdrop"
)

// smtp runs a small SMTP dialogue on stdin/stdout (sendmail -bs), enough
// for clients that submit that way: HELO, EHLO, MAIL, RCPT, DATA, RSET,
// NOOP, QUIT. Each message is queued like a sendmail -bm submission.
func (r *run) smtp(stdin io.Reader) int {
	br := bufio.NewReader(stdin)
	w := bufio.NewWriter(r.stdout)
	host := r.cfg.Get("myhostname")
	reply := func(s string) {
		w.WriteString(s + "\r\n")
		w.Flush()
	}
	reply("220 " + host + " ESMTP Postfix")
	var sender string
	var rcpts []string
	haveMail := false
	for {
		line, err := br.ReadString('\n')
		if err != nil && line == "" {
			return 0
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "HELO":
			reply("250 " + host)
		case "EHLO":
			reply("250-" + host + "\r\n250-PIPELINING\r\n250-SIZE " + r.cfg.Get("message_size_limit") + "\r\n250-8BITMIME\r\n250 DSN")
		case "MAIL":
			a, ok := pathArg(arg, "FROM:")
			if !ok {
				reply("501 5.5.4 Syntax: MAIL FROM:<address>")
				continue
			}
			sender, rcpts, haveMail = a, nil, true
			reply("250 2.1.0 Ok")
		case "RCPT":
			a, ok := pathArg(arg, "TO:")
			switch {
			case !haveMail:
				reply("503 5.5.1 Error: need MAIL command")
			case !ok || a == "":
				reply("501 5.5.4 Syntax: RCPT TO:<address>")
			default:
				rcpts = append(rcpts, a)
				reply("250 2.1.5 Ok")
			}
		case "DATA":
			if len(rcpts) == 0 {
				reply("554 5.5.1 Error: no valid recipients")
				continue
			}
			reply("354 End data with <CR><LF>.<CR><LF>")
			reply(r.smtpData(br, sender, rcpts))
			sender, rcpts, haveMail = "", nil, false
		case "RSET":
			sender, rcpts, haveMail = "", nil, false
			reply("250 2.0.0 Ok")
		case "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return 0
		case "":
			reply("500 5.5.2 Error: bad syntax")
		default:
			reply("502 5.5.2 Error: command not recognized")
		}
	}
}

// pathArg parses "FROM:<addr> params" / "TO:<addr>".
func pathArg(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		a, _, _ := strings.Cut(rest, " ")
		return a, a != ""
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

// smtpData reads the DATA section up to "." (removing dot-stuffing) and
// queues it; it returns the reply.
func (r *run) smtpData(br *bufio.Reader, sender string, rcpts []string) string {
	var buf bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil && line == "" {
			return "451 4.3.0 Error: unexpected end of input"
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "." {
			break
		}
		line = strings.TrimPrefix(line, ".")
		buf.WriteString(line + "\n")
	}
	env := &postdrop.Envelope{Sender: sender, FullName: r.fullName(), Recipients: rcpts, UID: r.uid}
	id, err := r.drop(env, &buf)
	if errors.Is(err, postdrop.ErrTooBig) {
		return "552 5.3.4 Error: message file too big"
	}
	if err != nil {
		r.logger().Warning("%v", err)
		return "451 4.3.0 Error: queue file write error"
	}
	if id == "" {
		return "250 2.0.0 Ok: queued"
	}
	return "250 2.0.0 Ok: queued as " + id
}
