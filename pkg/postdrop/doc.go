// Package postdrop writes locally submitted mail into the maildrop queue,
// the job of Postfix's postdrop(1) (installed set-gid postdrop so that
// unprivileged users can write into maildrop/). sendmail running as root
// calls Drop directly; other users' sendmail runs the postdrop command,
// which takes the envelope as arguments:
//
//	postdrop [-c config_dir] [-f sender] [-F full_name] [-t] -- recipient...
//
// and the message (LF line endings) on standard input. The submitting
// uid is postdrop's own real uid, never a claim by the caller.
//
// A maildrop file is a queue file (pkg/queue) with the attributes uid,
// full_name and extracted ("yes" after sendmail -t). Drop returns only
// after the file and its directory are fsynced, then wakes pickup.
//
// Exit status of the command: 0 queued; 65 (EX_DATAERR) the message
// exceeds message_size_limit; 75 (EX_TEMPFAIL) anything else.
package postdrop
