// Package lda is postdove's dovecot-lda(1), Dovecot's local delivery agent
// (installed as /usr/libexec/dovecot/dovecot-lda): it reads one message on
// standard input and saves it to the user's INBOX, or to the mailbox -m
// names, where mail_location says (maildir:~/Maildir through the Maildir
// store that Dovecot itself would accept, or mbox with Dovecot's dotlock
// and fcntl locking). Run by Postfix's mailbox_command without -d, it
// delivers for the user whose uid runs it, into $HOME.
//
// Flags, exit codes (0, 64 EX_USAGE, 67 EX_NOUSER, 75 EX_TEMPFAIL, 89 for
// a fatal configuration error), the messages on stderr and the log lines
// ("lda(alice)<pid><session>: Info: msgid=<...>: saved mail to INBOX", to
// syslog as "dovecot" or to log_path and info_log_path) follow Dovecot
// 2.3's; a permission failure is worded as Dovecot's eacces errors are
// ("Permission denied (euid=65534(nobody) egid=65534(nogroup) missing +x
// perm: /root, dir owned by 0:0 mode=0700)").
//
// Where it differs from Dovecot 2.3 on purpose or for now:
//   - Dovecot's LDA adds no header to the message (Return-Path and
//     Delivered-To come from Postfix's local); neither does this one. A
//     leading mbox "From " line is taken off, as Dovecot does.
//   - -d users come from the password file (pkg/auth's userdb later), not
//     from an auth server; the configuration is read in process, so
//     doveconf's check that default_login_user and default_internal_user
//     exist is not made.
//   - mbox saves are plain appends with the From line (">From " escaped),
//     without Dovecot's X-IMAPbase, X-UID, Status, X-Keywords and
//     Content-Length headers, which Dovecot adds when it next syncs.
//   - postmaster_address left unset on a host whose name has no domain
//     fails with "Invalid settings: postmaster_address setting not given",
//     as CentOS 7's Dovecot 2.2 does (the lab's troubleshooting note);
//     Dovecot 2.3's default falls back to the bare host name there. Set
//     but empty, both take the host name, which must have a domain.
package lda
