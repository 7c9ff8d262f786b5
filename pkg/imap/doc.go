// Package imap is the mail side of postdove's IMAP server: what runs in
// the user's process once Dovecot's login side (pkg/dovecot) has
// authenticated a client and handed the connection over (pkg/handoff).
// It serves the authenticated and selected states with go-imap v2's
// imapserver on the user's Maildir (pkg/maildir), so Dovecot, dovecot-lda,
// Postfix's local(8) and postdove share one store with the same UIDs,
// UIDVALIDITY, flags and keywords.
//
// One Server lives in each user process; Serve runs one connection. The
// Server keeps one shared state per open mailbox: the messages in
// sequence order as the server last saw them, and go-imap's
// MailboxTracker, from which each selected session has a SessionTracker.
// Every change, ours or another program's, is found by a Maildir Sync and
// compared with that state, which queues EXISTS, EXPUNGE and FETCH FLAGS
// updates for the sessions; each session's sequence numbers go through its
// tracker, so two clients on one mailbox stay consistent while either
// expunges. inotify on new/ and cur/ triggers the Sync, so IDLE reports
// deliveries and flag changes of other processes within milliseconds.
//
// Mailbox names follow Dovecot's rules for Maildir++ (see CheckName):
// names that could leave the Maildir ("../x", "a/b", "~x") are refused
// with Dovecot's texts; '%' and '*' are kept as Dovecot keeps them.
//
// # Extensions go-imap v2.0.0-beta.8's server lacks
//
// imapserver.Conn dispatches a fixed set of command names and answers
// others "BAD Unknown command"; its Options.Caps only advertise. Dovecot
// offers ID, CONDSTORE, QRESYNC, QUOTA, SORT and THREAD, which Thunderbird,
// Roundcube and mutt use when offered. Without copying or vendoring
// go-imap, they can be added in this package in front of imapserver:
//
//   - A command filter on the connection wrapper (wire, below) already
//     sees every byte the client sends. It would parse just the tag and
//     command name of each line (with literal counting, so a literal's
//     content is never taken for a command) and pass everything else
//     through unchanged. For the extra commands it answers itself on the
//     same socket, holding imapserver's output while it writes (wire
//     serialises writes), and consumes the command instead of passing it
//     on. The session state it needs (selected mailbox, its view) is
//     ours already: the Session below, reached through the Server.
//   - ID: the filter answers `* ID ("name" "Dovecot")` and `OK`; no
//     state. QUOTA / GETQUOTAROOT: from the userdb's quota_rule
//     (handoff.Info.UserdbFields) and the sum of the index's sizes.
//   - SORT and THREAD: their criteria are a small grammar of our own
//     (parsed and fuzzed here); the search part reuses this package's
//     matcher over imap.SearchCriteria by handing "SEARCH <keys>" to
//     go-imap's public imapclient-side types is not possible, so the
//     filter parses the keys with the same code as SEARCH re-encodes: the
//     simplest route is our own search-key parser (fuzzed). Sorting keys
//     come from the index's Envelope (date, subject, from, to, cc) and
//     sizes; THREAD=REFERENCES from Message-ID/In-Reply-To there plus
//     References read from the header.
//   - CONDSTORE/QRESYNC need a MODSEQ per message and a HIGHESTMODSEQ per
//     mailbox that survive restarts and are shared with other
//     processes: a small per-folder file beside postdove.index (uid →
//     modseq, bumped under the uidlist lock by SetFlags, Deliver, Copy
//     and Expunge, with the expunged UIDs kept for VANISHED). The filter
//     then rewrites SELECT ... (CONDSTORE|QRESYNC ...), FETCH ...
//     (CHANGEDSINCE n) and STORE (UNCHANGEDSINCE n) itself, adds
//     [HIGHESTMODSEQ n] to SELECT's reply and MODSEQ to FETCH responses,
//     and turns EXPUNGE updates into VANISHED once QRESYNC is enabled.
//     Because this touches every FETCH and untagged update, it is the
//     point where answering those commands wholly in this package
//     (our own small IMAP command loop for the selected state, still
//     with imapserver's exported writers and trackers) becomes simpler
//     than filtering.
//
// None of these is implemented yet; the capabilities announced are only
// those served.
package imap
