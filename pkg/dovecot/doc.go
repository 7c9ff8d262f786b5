// Package dovecot is postdove's Dovecot master (dovecot(1)): it reads
// dovecot.conf, binds the listeners of the protocols served (service
// imap-login and pop3-login inet listeners, and the listeners of the
// services registered with RegisterListener, such as lmtp), runs the
// pre-login dialogue of Dovecot's imap-login and pop3-login itself, with
// TLS, and after a successful login hands the client to that user's mail
// process: the dovecot binary run again with a hidden argument, as the
// user's uid, gid and groups, one per user, reused for the user's later
// connections and ended some time (idle_kill) after its last one. A plain
// connection's socket goes over with SCM_RIGHTS; a TLS session stays in
// the master, which relays the clear text over a socketpair. The mail
// process serves the session with the handoff.Server registered for the
// protocol (RegisterMailServer).
package dovecot
