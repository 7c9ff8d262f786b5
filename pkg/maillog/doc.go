// Package maillog writes log records in the layout Postfix and Dovecot use,
// so that grep, pflogsumm and lab checkers read postdove's logs unchanged.
// It stands in for Postfix's logging path: syslog(3) with facility mail, or,
// when maillog_file is set, postlogd(8) appending to that file (see also
// postlog(1) and maillog_file in postconf(5)).
//
// Records sent to syslog over /dev/log use the RFC 3164 layout the C
// library uses:
//
//	<22>Nov  1 22:21:01 postfix/qmgr[1234]: 3F2A81234B: removed
//
// Records appended to a file carry the host name, as postlogd writes them:
//
//	Nov 01 22:21:01 vm2 postfix/qmgr[1234]: 3F2A81234B: removed
//
// Each file record is written with one write(2) on an O_APPEND descriptor,
// so concurrent processes never interleave partial lines.
package maillog
