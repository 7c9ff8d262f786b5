// Package smtpd is the SMTP server, Postfix's smtpd(8): the session
// (banner, EHLO keywords, MAIL/RCPT/DATA/BDAT, STARTTLS and smtps), its
// maillog lines, the restriction lists of access(5)-style checks, and
// queueing of accepted mail through cleanup.
//
// The session is written here rather than on a generic SMTP server
// library so that every reply, keyword order, error count and log line
// is Postfix's own; github.com/emersion/go-smtp's server in particular
// hard-codes its banner as "<domain> ESMTP Service Ready", so the
// "220 vm2.DOMAIN ESMTP Postfix" of smtpd_banner cannot be had with it.
//
// The master runs it as the daemon role "smtpd" on a listener it bound:
//
//	srv := smtpd.New(cfg, queue.FromConfig(cfg), log) // cfg with the service's -o overrides
//	err := srv.Serve(ctx, ln)                         // or srv.ServeConn(ctx, conn) per connection
//
// and sendmail -bs runs the same session stand-alone on its standard
// input and output (StandAlone, ServeStdio), queueing to maildrop.
//
// As in Postfix, the queue file is opened at the first accepted
// recipient (so "ID: client=" is logged then, and later rejects are
// "ID: reject:") and removed when the transaction is given up; MAIL's
// RET, ENVID, BODY and SMTPUTF8 and RCPT's NOTIFY and ORCPT are recorded
// in it. With smtpd_delay_reject = no the client, HELO and sender
// restrictions answer at connect (in place of the banner, then 503 to
// all but QUIT), HELO/EHLO and MAIL; any 421 or 521 reply ends the
// session, as Postfix hangs up. smtpd_tls_auth_only has nothing to hide while AUTH is not
// offered (no SASL yet). crypto/tls picks the TLS 1.3 cipher itself
// (AES-128-GCM first), where Postfix's OpenSSL may use AES-256-GCM when
// the client lists it first.
package smtpd
