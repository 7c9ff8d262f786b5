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
	greeting := "+OK "
	if c.trusted() {
		greeting += "[XCLIENT] "
	}
	if c.write(greeting+c.s.Get("login_greeting")+"\r\n") != nil {
		return
	}
	var user *string // USER's argument, which may be empty
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
			c.readEnded(err, "-ERR ")
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
			name := pop3Arg(line)
			user = &name
			if c.plaintextAllowed() {
				ok = c.write("+OK\r\n") == nil
			} else {
				c.plaintextRefused(name)
				ok = c.write("-ERR [AUTH] "+plaintextDisallowed+"\r\n") == nil
			}
		case "PASS":
			if user == nil {
				// As pop3-login: a client over the bad command limit
				// is let go at once; else the privacy rule comes first.
				if c.bad < maxBadCommands && !c.plaintextAllowed() {
					c.plaintextRefused("")
					c.bad++
					ok = c.write("-ERR [AUTH] "+plaintextDisallowed+"\r\n") == nil
				} else {
					ok = c.pop3Bad("No username given.")
				}
				break
			}
			if !c.plaintextAllowed() {
				c.plaintextRefused("")
				ok = c.write("-ERR [AUTH] "+plaintextDisallowed+"\r\n") == nil
				break
			}
			res, out := c.login(*user, pop3Arg(line))
			user = nil
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
			ok = c.pop3Bad("Unknown command.")
		}
		if !ok {
			return
		}
	}
}

// pop3Arg is everything after a command's name and the space after it.
func pop3Arg(line string) string {
	_, arg, _ := strings.Cut(line, " ")
	return arg
}

// pop3Bad answers a bad command with -ERR msg; after maxBadCommands of
// them, pop3-login answers the next with its own -ERR and hangs up.
func (c *client) pop3Bad(msg string) bool {
	if c.bad++; c.bad > maxBadCommands {
		c.reason = "Disconnected: Too many bad commands"
		c.write("-ERR Too many invalid bad commands.\r\n")
		return false
	}
	return c.write("-ERR "+msg+"\r\n") == nil
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
		msg = "-ERR [AUTH] Invalid base64 in response"
	case saslBadInitial:
		msg = "-ERR [AUTH] Invalid base64 data in initial response"
	case saslUnsupported:
		msg = "-ERR [AUTH] Unsupported authentication mechanism."
	case saslDisabled:
		msg = "-ERR [AUTH] Plaintext authentication disabled."
	case saslSSLRequired:
		msg = "-ERR [AUTH] Authentication not allowed until SSL/TLS is enabled."
	case saslTempFail:
		msg = "-ERR [SYS/TEMP] Temporary authentication failure."
	}
	return c.write(msg+"\r\n") == nil
}
