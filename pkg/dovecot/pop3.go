package dovecot

import (
	"strings"
	"time"
)

// pop3Capa is pop3-login's CAPA answer.
func (c *client) pop3Capa() string {
	lines := []string{"+OK", "CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"}
	if c.sslEnabled() && c.tls == nil {
		lines = append(lines, "STLS")
	}
	if c.plaintextAllowed() {
		lines = append(lines, "USER")
	}
	lines = append(lines, strings.TrimSpace("SASL "+strings.Join(c.a.Offered(c.request()), " ")), ".")
	return strings.Join(lines, "\r\n") + "\r\n"
}

// servePOP3 runs Dovecot's pop3-login dialogue on c.
func (c *client) servePOP3() {
	if c.write("+OK "+c.s.Get("login_greeting")+"\r\n") != nil {
		return
	}
	bad, user := 0, ""
	for !c.done {
		c.conn.SetReadDeadline(time.Now().Add(loginIdle))
		line, err := readLine(c.br)
		if err == errTooLong {
			if c.write("-ERR Input line too long.\r\n") != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		name, args := pop3Command(line)
		ok := true
		switch name {
		case "CAPA":
			ok = c.write(c.pop3Capa()) == nil
		case "QUIT":
			c.loggedOut = true
			c.write("+OK Logging out\r\n")
			return
		case "STLS":
			switch {
			case c.tls != nil:
				ok = c.write("-ERR TLS is already active.\r\n") == nil
			case !c.sslEnabled():
				ok = c.write("-ERR TLS support isn't enabled.\r\n") == nil
			default:
				ok = c.write("+OK Begin TLS negotiation now.\r\n") == nil
				if ok {
					c.startTLS()
					ok = c.tls.Handshake() == nil
				}
			}
		case "USER":
			if len(args) != 1 {
				ok = c.write("-ERR No username given.\r\n") == nil
			} else if !c.plaintextAllowed() {
				c.triedPlaintext = true
				ok = c.write("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n") == nil
			} else {
				user = args[0]
				ok = c.write("+OK\r\n") == nil
			}
		case "PASS":
			if user == "" {
				ok = c.write("-ERR No username given.\r\n") == nil
				break
			}
			res, out := c.login(user, strings.TrimPrefix(line[len("PASS"):], " "))
			user = ""
			ok = c.pop3AuthResult(res, out)
		case "AUTH":
			if len(args) == 0 {
				ok = c.write("+OK\r\n"+strings.Join(append(c.a.Offered(c.request()), "."), "\r\n")+"\r\n") == nil
				break
			}
			var ir *string
			if len(args) > 1 {
				ir = &args[1]
			}
			res, out := c.sasl(args[0], ir, func(ch string) error { return c.write("+ " + ch + "\r\n") })
			ok = c.pop3AuthResult(res, out)
		default:
			bad++
			ok = c.write("-ERR Unknown command.\r\n") == nil && bad < maxBadCommands
		}
		if !ok {
			return
		}
	}
}

func (c *client) pop3AuthResult(res authResult, out saslOutcome) bool {
	msg := "-ERR [AUTH] Authentication failed."
	switch out {
	case saslOK:
		if err := c.handoff(res, ""); err != nil {
			c.write("-ERR [SYS/TEMP] " + err.Error() + "\r\n")
			return false
		}
		return true
	case saslCancelled:
		msg = "-ERR Authentication aborted by client."
	case saslBadBase64:
		msg = "-ERR Invalid base64 data in continued response"
	case saslUnsupported:
		msg = "-ERR Unsupported authentication mechanism."
	case saslDisabled:
		msg = "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
	case saslTempFail:
		msg = "-ERR [SYS/TEMP] Temporary authentication failure."
	}
	return c.write(msg+"\r\n") == nil
}
