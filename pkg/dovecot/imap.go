package dovecot

import (
	"errors"
	"strings"
	"time"
)

// maxBadCommands is how many invalid commands a client may send: the
// last one is answered with a BYE (IMAP) or -ERR and the login process
// hangs up, as Dovecot's CLIENT_MAX_BAD_COMMANDS.
const maxBadCommands = 3

// imapBadCommand is Dovecot's reply to a command it cannot parse or
// run, which counts towards maxBadCommands.
const imapBadCommand = "Error in IMAP command received by server."

// imapCapability is Dovecot 2.3's pre-login capability list: the base,
// then STARTTLS, LOGINDISABLED and AUTH= as the connection allows.
func (c *client) imapCapability() string {
	caps := []string{"IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+"}
	if v := c.s.Get("imap_capability"); v != "" && !strings.HasPrefix(v, "+") {
		caps = strings.Fields(v)
	}
	if c.sslEnabled() && c.tls == nil {
		caps = append(caps, "STARTTLS")
	}
	if !c.plaintextAllowed() {
		caps = append(caps, "LOGINDISABLED")
	}
	for _, m := range c.a.Offered(c.request()) {
		caps = append(caps, "AUTH="+m)
	}
	return strings.Join(caps, " ")
}

// serveIMAP runs Dovecot's imap-login dialogue on c.
func (c *client) serveIMAP() {
	if c.write("* OK [CAPABILITY "+c.imapCapability()+"] "+c.s.Get("login_greeting")+"\r\n") != nil {
		return
	}
	for !c.done {
		c.conn.SetReadDeadline(time.Now().Add(loginIdle))
		cmd, err := readIMAPCommand(c.br, func() error { return c.write("+ OK\r\n") })
		if err != nil {
			if !errors.Is(err, errSyntax) && !errors.Is(err, errTooLong) {
				c.readEnded(err, "* BYE ")
				return
			}
			tag := cmd.tag
			if tag == "" {
				tag = "*"
			}
			msg := imapBadCommand
			if errors.Is(err, errTooLong) {
				msg = "Too long argument."
			}
			if !c.imapBad(tag, msg) {
				return
			}
			continue
		}
		if !c.imapCommand(cmd) {
			return
		}
	}
}

// imapBad answers a bad command with BAD msg, or, the maxBadCommands'th
// time, with Dovecot's BYE; false ends the connection.
func (c *client) imapBad(tag, msg string) bool {
	if c.bad++; c.bad >= maxBadCommands {
		c.reason = "Too many invalid commands"
		c.write("* BYE Too many invalid IMAP commands.\r\n")
		return false
	}
	return c.write(tag+" BAD "+msg+"\r\n") == nil
}

// imapCommand answers one command; false ends the connection.
func (c *client) imapCommand(cmd imapCommand) bool {
	tag, args := cmd.tag, cmd.args
	reply := func(s string) bool { return c.write(tag+" "+s+"\r\n") == nil }
	switch cmd.name {
	case "CAPABILITY":
		return c.write("* CAPABILITY "+c.imapCapability()+"\r\n") == nil &&
			reply("OK Pre-login capabilities listed, post-login capabilities have more.")
	case "NOOP":
		return reply("OK NOOP completed.")
	case "LOGOUT":
		c.loggedOut = true
		c.write("* BYE Logging out\r\n")
		reply("OK Logout completed.")
		return false
	case "ID":
		return c.write("* ID (\"name\" \"Dovecot\")\r\n") == nil && reply("OK ID completed.")
	case "STARTTLS":
		switch {
		case c.tls != nil:
			return reply("BAD TLS is already active.")
		case !c.sslEnabled():
			return reply("BAD TLS support isn't enabled.")
		}
		if !reply("OK Begin TLS negotiation now.") {
			return false
		}
		c.startTLS()
		return c.tls.Handshake() == nil
	case "LOGIN":
		if len(args) != 2 {
			return c.imapBad(tag, imapBadCommand)
		}
		if !c.plaintextAllowed() {
			c.plaintextRefused(args[0])
			return c.write("* BAD [ALERT] Plaintext authentication not allowed without SSL/TLS, but your client did it anyway. If anyone was listening, the password was exposed.\r\n") == nil &&
				reply("NO [PRIVACYREQUIRED] "+plaintextDisallowed)
		}
		res, out := c.login(args[0], args[1])
		return c.imapAuthResult(tag, res, out)
	case "AUTHENTICATE":
		if len(args) < 1 || len(args) > 2 {
			return c.imapBad(tag, imapBadCommand)
		}
		var ir *string
		if len(args) == 2 {
			ir = &args[1]
		}
		res, out := c.sasl(args[0], ir, func(ch string) error { return c.write("+ " + ch + "\r\n") })
		return c.imapAuthResult(tag, res, out)
	}
	return c.imapBad(tag, imapBadCommand)
}

func (c *client) imapAuthResult(tag string, res authResult, out saslOutcome) bool {
	reply := func(s string) bool { return c.write(tag+" "+s+"\r\n") == nil }
	switch out {
	case saslOK:
		if err := c.handoff(res, tag); err != nil {
			c.write("* BYE " + err.Error() + "\r\n")
			return false
		}
		return true
	case saslCancelled:
		return reply("BAD Authentication aborted by client.")
	case saslBadBase64:
		return reply("NO [ALERT] Invalid base64 in response")
	case saslBadInitial:
		return reply("BAD Invalid base64 data in initial response")
	case saslUnsupported:
		return reply("NO [ALERT] Unsupported authentication mechanism.")
	case saslDisabled:
		return reply("NO [PRIVACYREQUIRED] Plaintext authentication disabled.")
	case saslSSLRequired:
		return reply("NO [PRIVACYREQUIRED] Authentication not allowed until SSL/TLS is enabled.")
	case saslTempFail:
		return reply("NO [UNAVAILABLE] Temporary authentication failure.")
	}
	return reply("NO [AUTHENTICATIONFAILED] Authentication failed.")
}
