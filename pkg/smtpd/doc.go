// Package smtpd is the SMTP server, Postfix's smtpd(8): the session
// (banner, EHLO keywords, MAIL/RCPT/DATA/BDAT), its maillog lines, the
// restriction lists of access(5)-style checks, and queueing of accepted
// mail through cleanup.
//
// The session is written here rather than on a generic SMTP server
// library so that every reply, keyword order, error count and log line
// is Postfix's own.
//
// The master runs it as the daemon role "smtpd" on a listener it bound:
//
//	srv := smtpd.New(cfg, queue.FromConfig(cfg), log) // cfg with the service's -o overrides
//	err := srv.Serve(ctx, ln)                         // or srv.ServeConn(ctx, conn) per connection
//
// Known differences from Postfix's smtpd so far: the queue file is made
// at the end of DATA (Postfix opens it at the first accepted RCPT, so
// its "ID: client=" line and "ID: reject:" prefixes come earlier); the
// DSN parameters (RET, ENVID, NOTIFY, ORCPT) and BODY/SMTPUTF8 are
// checked but not yet recorded in the queue file (cleanup.Submission has
// no fields for them).
package smtpd
