// Package smtpd is the SMTP server, Postfix's smtpd(8): the session
// (banner, EHLO keywords, MAIL/RCPT/DATA/BDAT), its maillog lines, the
// restriction lists of access(5)-style checks, and queueing of accepted
// mail through cleanup.
//
// The session is written here rather than on a generic SMTP server
// library so that every reply, keyword order, error count and log line
// is Postfix's own.
package smtpd
