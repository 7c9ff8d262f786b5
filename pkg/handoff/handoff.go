// Package handoff is what passes from a Dovecot login process (imap-login,
// pop3-login) to the user's mail process (imap, pop3) when a client has
// logged in, as Dovecot's login processes pass the client and the userdb
// reply to the post-login process.
//
// The login side (pkg/dovecot) keeps the listeners, TLS and the pre-login
// dialogue, and runs as root because authentication needs it (PAM,
// /etc/shadow). After a successful login it hands the connection to a
// process that runs with the user's uid and gid: the client's own socket
// when the connection is plain, or one end of a socketpair when the login
// side keeps the TLS session and relays the clear text. Info travels with
// it. The mail side (pkg/imap, pkg/pop3) serves the rest of the session
// from the authenticated state: it answers the login command itself (IMAP:
// "Tag OK [CAPABILITY ...] Logged in") and reads Input before the socket.
package handoff

import (
	"net"

	"postdove/pkg/doveconf"
)

// Info describes one logged-in client.
type Info struct {
	Protocol   string // "imap" or "pop3"
	User       string // the user name after authentication and userdb
	UID, GID   int
	Home       string
	Mail       string // mail_location after the userdb's "mail" field, %-variables expanded
	Session    string // Dovecot's session id, as in the log lines' session=<...>
	PID        int    // the login side's mpid in "Login: ... mpid=" is the mail process's pid
	RemoteIP   string
	LocalIP    string
	RemotePort int
	LocalPort  int
	Secured    bool // TLS, or a connection Dovecot trusts as secure (from localhost)
	TLS        bool
	// Tag is the IMAP tag of the LOGIN or AUTHENTICATE command that
	// succeeded; the mail side answers it. Empty for POP3 (the mail
	// side answers "+OK Logged in.").
	Tag string
	// Input is what the client sent after the login command and the
	// login side has already read; the mail side consumes it first.
	Input []byte
	// Settings are the protocol's settings (imap_*, pop3_*, mail_*,
	// hostname, ...) as doveconf's Settings.Get gives them for this
	// protocol and connection; Namespaces are its namespace blocks. The
	// mail process does not read dovecot.conf itself: as the user it
	// may not be allowed to.
	Settings   map[string]string
	Namespaces []doveconf.Namespace
	// UserdbFields are the userdb's extra fields (quota_rule, ...).
	UserdbFields map[string]string
}

// Server is a protocol's mail side, in the user's process.
type Server interface {
	// Serve runs the session on conn until the client logs out or the
	// connection ends, and closes conn. logf writes one log line with
	// Dovecot's post-login prefix already applied, e.g.
	// "imap(alice)<4711><e1Bq0TIFzJN/AAAB>: " + text.
	Serve(conn net.Conn, info *Info, logf func(format string, args ...any))
}
