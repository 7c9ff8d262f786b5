// Package mbox appends messages to Unix mbox files the way Postfix's
// local(8) delivery agent does for /var/spool/mail/USER and for a
// home_mailbox without a trailing slash (mailbox layout as in mbox(5)):
// a "From sender  ctime" separator line, CRLF turned into LF, body lines
// beginning with "From " quoted as ">From ", and an empty line after the
// message.
//
// Locking follows mailbox_delivery_lock (default on Linux "fcntl,
// dotlock"), with deliver_lock_attempts, deliver_lock_delay and
// stale_lock_time, as in postconf(5). A mailbox that is a symbolic link,
// has more than one hard link or is not a regular file is refused, and on
// any error the mailbox is truncated back to its size before delivery.
package mbox
