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
package lda
