// Package queue is postdove's mail queue: the on-disk storage that
// postdrop, pickup, cleanup, qmgr and the delivery agents share, as
// described by Postfix's qmgr(8) manual page and its QSHAPE_README queue
// layout. It also provides the FIFO triggers that wake pickup and qmgr.
//
// # Layout
//
// Below queue_directory live Postfix's queues (maildrop, incoming, active,
// deferred, hold, corrupt), the per-message logfiles (bounce, defer,
// trace), and flush, saved, pid, public and private. Setup creates them
// with Postfix's owners and modes. Queues named in hash_queue_names keep
// their files in hash_queue_depth levels of one-character subdirectories
// (deferred/3/3F2A81234B), as Postfix does.
//
// # Queue IDs
//
// Short IDs are the microseconds of the arrival time as five upper-case
// hex digits followed by the queue file's inode number in hex. Long IDs
// (enable_long_queue_ids) are the seconds in base 52 (six characters), the
// microseconds in base 52 (four characters), the letter 'z', then the inode
// number in base 51. Both are Postfix's formats.
//
// # Queue file format (postdove's own)
//
// A queue file is a text envelope followed by the raw message content:
//
//	postdove-queue 1
//	arrival 1795299959 515175
//	content 0000000000000312 0000000000001234 0000000000001290
//	sender "alice@example.com"
//	attr "message_id" "<x@example.com>"
//	rcpt - "bob@example.org" "bob@example.org"
//	end
//	<content bytes>
//
// Strings are Go-quoted (strconv.Quote), so any byte can appear in an
// address. The "content" line holds, in fixed-width decimal, the offset of
// the content, its length and the size Postfix would report for it (see
// RecordSize; older files lack the third number); they are patched in
// place when the writer commits, and the reader checks them against the
// file size so a truncated file is reported as corrupt. Each "rcpt" line
// starts with a one-byte status ('-' pending, 'D' delivered, 'B' bounced,
// 'T' deferred at the last attempt) at a fixed offset, so a delivery
// agent can mark a recipient with one pwrite (File.Sync makes it durable;
// the queue manager syncs before it keeps a message for a retry). The optional
// original recipient follows the address, and then, when the recipient has
// them, its RFC 3461 NOTIFY and ORCPT parameters:
//
//	rcpt - "bob@example.org" "" "SUCCESS,DELAY" "rfc822;Bob@example.org"
//
// (files written before these were recorded have two fields: both are
// read). What the SMTP server records of the message (ENVID, RET,
// SMTPUTF8, BODY, the client's name, address, HELO, protocol and SASL
// user) is kept in attributes (AttrENVID ...).
//
// A file is written under a temporary name (tmp.*) in the top directory of
// its queue, linked to its queue ID (which includes the file's inode
// number), then the file and its directory are fsynced: only then is the
// message queued (Commit). CommitOrdered leaves out the directory fsync,
// for a copy whose original stays durable until after this one is (pickup
// removes the maildrop file only after; a journaling file system commits
// the new name no later than that removal, and the file's own fsync after
// the link already carries it on ext4 and xfs). Names that are not queue
// IDs are never messages.
//
// Deferral reasons are kept, as in Postfix, in per-message logfiles under
// defer/ (bounce/ and trace/ likewise), one block of name=value lines per
// recipient (recipient, orig_rcpt, notify_sender, status, action, reason),
// blocks separated by an empty line.
//
// The attribute "trace_flags" = "verify" marks a message sendmail -bv
// submitted: it is reported on, not delivered. Readers ignore attributes
// they do not know, so files of older versions read as before.
package queue
