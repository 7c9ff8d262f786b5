// Package sendmail is Postfix's sendmail(1) compatibility interface (also
// answering as mailq and newaliases by program name): it reads a message,
// and hands it with its envelope to postdrop, which writes it to the
// maildrop queue. As root the maildrop file is written directly.
//
// Modes: -bm (default, deliver), -bs (an SMTP dialogue on stdin/stdout),
// -bp (mailq: runs postqueue -p), -bi (newaliases: runs postalias on
// each alias_database; also -I), -q (runs postqueue -f), -qRsite
// (postqueue -s site), -qIqueue_id (postqueue -i queue_id), -bd and -bl
// (postfix start, in the background); -qinterval, -bh and -bH do nothing.
// Options as Postfix's:
// -f/-r sender, -F full name, -t, -i/-oi, -N, -v, -C config, -o x, -B,
// -R, -V, -X. Usage errors and failures exit 75 (EX_TEMPFAIL) with
// "sendmail: fatal: ..." as Postfix does.
//
// API: Main(argv []string, stdin io.Reader, stdout, stderr io.Writer) int,
// Parse(argv []string) (*Options, error).
package sendmail
