package dovecot

import (
	"net"

	"postdove/pkg/doveconf"
	"postdove/pkg/handoff"
)

// ServeFunc serves a service on a listener the master bound for it (a
// unix_listener or inet_listener of its service block) until the listener
// is closed. logf writes one line to Dovecot's log with the prefix
// "service(pid): " ("lmtp(4711): "), unless the text starts with a prefix
// of the service's own ("lmtp(alice)<4711><session>: "); a text (after
// that prefix) starting "Error: " or "Warning: " is logged at that level.
type ServeFunc func(ln net.Listener, cfg *doveconf.Config, logf func(format string, args ...any)) error

var (
	mailServers = map[string]handoff.Server{}
	listeners   = map[string]ServeFunc{}
)

// RegisterMailServer makes s the mail side of protocol ("imap", "pop3")
// in the users' mail processes. Call it from main (or init) in the
// dovecot command, before Main.
func RegisterMailServer(protocol string, s handoff.Server) { mailServers[protocol] = s }

// RegisterListener makes the master bind the listeners of service block
// service ("lmtp") and run serve on each, in the master process (as root).
// A service named after a protocol is served only when protocols lists it.
func RegisterListener(service string, serve func(ln net.Listener, cfg *doveconf.Config, logf func(format string, args ...any)) error) {
	listeners[service] = serve
}
