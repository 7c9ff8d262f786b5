// Package smtp is Postfix's smtp(8) and lmtp(8) delivery agent: it sends
// a queued message to the next hop (relayhost, the recipient domain's MX
// hosts, or an LMTP server on a unix or TCP socket) and reports one result
// per recipient, with Postfix's texts, DSN codes and log lines.
//
// The protocol engine is written on net/textproto-style line I/O of its
// own rather than on go-smtp's client, because Postfix's client needs what
// go-smtp refuses: opportunistic STARTTLS (smtp_tls_security_level = may,
// falling back to a new plaintext connection when the handshake fails),
// per-recipient replies in a pipelined transaction, and the text of every
// reply for the DSN. References: RFC 5321 (SMTP), RFC 2033 (LMTP),
// RFC 2920 (PIPELINING), RFC 3207 (STARTTLS), RFC 3461 (DSN), RFC 1870
// (SIZE), RFC 6152 (8BITMIME).
package smtp
