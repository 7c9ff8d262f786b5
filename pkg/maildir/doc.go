// Package maildir is the Maildir store of postdove: Postfix's local(8)
// delivery for a home_mailbox ending in "/", and the mail store of
// dovecot-lda(1), imapd and pop3d for mail_location = maildir:~/Maildir,
// on disk exactly as Dovecot 2.3 keeps it, so that Dovecot and postdove
// can take turns on one Maildir without a client noticing.
//
// The layout is the maildir format (tmp/, new/, cur/) with Dovecot's file
// names:
//
//	1795300197.M239099P17809.vm,S=33,W=38:2,FSab
//
// seconds, microseconds, process id, a per-process counter (Q<n>, from the
// second delivery on), the host name with "/" and ":" written as \057 and
// \072, the file size S= and the size with CRLF line ends W=, and after
// ":2," the flags D F R S T (Draft, Flagged, Answered, Seen, Deleted), then
// the keyword letters a–z that dovecot-keywords names. Messages are stored
// with LF line ends. A file appears in new/ (or cur/) only once it is
// complete and fsynced.
//
// Deliver is the plain delivery Postfix's local(8) makes: a file in new/,
// no UID. Store and Mailbox are the store Dovecot's programs use:
//
//   - Maildir++ (Store): INBOX is the root; a mailbox "a.b" is the folder
//     ".a.b" (modified UTF-7, RFC 3501 §5.1.3) with its maildirfolder
//     file; Create, Delete, Rename, List; Subscriptions and Subscribe
//     keep Dovecot 2.3's subscriptions file ("V\t2", names with tabs).
//   - UIDs (Mailbox): dovecot-uidlist version 3 ("3 V<uidvalidity>
//     N<nextuid> G<guid>", then "<uid> [<ext>...] :<file>"), changed only
//     under Dovecot's dotlock dovecot-uidlist.lock, by appending or by a
//     whole new file renamed over it. Sync gives each new file the next
//     UID and returns UIDVALIDITY, UIDNEXT and the messages in UID order;
//     Deliver saves with flags, keywords and date and returns the UID;
//     Open, SetFlags, Expunge, Copy and Move work by UID.
//   - postdove.index (see IndexName) caches a Sync, so an unchanged
//     folder opens without listing or stating its files; the uidlist
//     and the folders' times decide whether it is still true. It keeps
//     each message's Envelope (the raw header fields of IMAP's
//     ENVELOPE): taken from what Deliver and Copy write, and read from
//     the header of other programs' files once, when first seen.
//
// Change notification (IMAP IDLE) is left to the caller for now: a new
// Sync shows what changed.
package maildir
