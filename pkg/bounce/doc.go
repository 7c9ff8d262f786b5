// Package bounce writes delivery status notifications the way Postfix's
// bounce(8) daemon does (see bounce(8) and RFC 3464): a multipart/report
// message from MAILER-DAEMON@$myhostname, sent with the null envelope
// sender, holding a human-readable explanation, a message/delivery-status
// part (Reporting-MTA, X-Postfix-Queue-ID, Arrival-Date, and per recipient
// Final-Recipient, Original-Recipient, Action, Status, Diagnostic-Code),
// and the original message (message/rfc822) or its headers
// (text/rfc822-headers). Non-delivery reports, delay warnings
// (delay_warning_time) and the delivery status reports sendmail -bv asks
// for share the layout; lines are wrapped below 80 columns as Postfix's.
//
// The queue manager submits what Write produces through cleanup, to the
// address Envelope returns: the original sender, or postmaster for a
// double bounce.
package bounce
