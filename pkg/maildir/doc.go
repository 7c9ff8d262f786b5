// Package maildir delivers messages into Maildir folders, as Postfix's
// local(8) does for a home_mailbox ending in "/" and as Dovecot's LDA
// (dovecot-lda(1)) does for mail_location = maildir:~/Maildir. The layout
// is the maildir format (tmp/, new/, cur/) with Dovecot's file names:
//
//	1795300197.M239099P17809.vm,S=33,W=38
//
// seconds, microseconds, process id, a per-process counter (Q<n>, from the
// second delivery on), the host name with "/" and ":" written as \057 and
// \072, the file size S= and the size with CRLF line ends W=. Messages are
// stored with LF line ends. A file appears in new/ (or cur/) only once it
// is complete and fsynced.
package maildir
