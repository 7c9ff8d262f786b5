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
// imapserver.Conn dispatches a fixed set of command names and answers the
// others "BAD Unknown command"; Options.Caps only advertises. Dovecot
// offers ID, CONDSTORE, QRESYNC, QUOTA, SORT and THREAD, and Thunderbird,
// Roundcube and mutt use them when offered. They can be added here, in
// front of imapserver, without copying or vendoring go-imap:
//
//   - A command filter in wire.Read. wire already sees every byte the
//     client sends, and its cmdScanner (fuzzed) already finds each
//     command's tag and name while skipping literals. For a command
//     imapserver does not know, Read hands imapserver only the bytes
//     before it; when imapserver asks for more it has answered all of
//     those (it runs one command at a time), so the filter then writes
//     the command's replies itself, under wire's write lock, and drops
//     the command (line and literals) from the stream. The answer comes
//     from the session's state, which is ours (the selected box, its
//     messages and tracker).
//   - ID: `* ID ("name" "Dovecot")` and OK; no state.
//   - QUOTA, GETQUOTAROOT: the userdb's quota_rule (handoff.Info's
//     UserdbFields) against the sum of the index's message sizes.
//   - SORT and THREAD (and their UID forms): a parser of our own for
//     the sort criteria and search keys (fuzzed), producing
//     imap.SearchCriteria for this package's matcher; sort keys from
//     the index's Envelope (DATE, SUBJECT, FROM, TO, CC) and sizes;
//     THREAD=REFERENCES and ORDEREDSUBJECT from Message-ID, In-Reply-To,
//     References and the base subject.
//   - CONDSTORE and QRESYNC need a MODSEQ per message that other
//     processes keep too: a small per-folder file in pkg/maildir beside
//     postdove.index, bumped under the uidlist lock by SetFlags,
//     Deliver, Copy and Expunge, keeping expunged UIDs for VANISHED.
//     They change commands imapserver does handle (SELECT's
//     parameters, FETCH's CHANGEDSINCE, STORE's UNCHANGEDSINCE, MODSEQ
//     in every FETCH, VANISHED instead of EXPUNGE), so the filter would
//     rewrite those too; past that point a selected-state command loop
//     of our own on go-imap's public types is the simpler design, with
//     imapserver kept for the rest.
//
// None of these is served yet, and the capabilities announced are only
// those served.
package imap
