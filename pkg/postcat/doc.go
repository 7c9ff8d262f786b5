// Package postcat is postdove's postcat(1): it prints a queue file in
// Postfix's postcat layout, so that the commands and habits of a Postfix
// machine keep working on postdove's queue.
//
// The queue file format is postdove's own (see postdove/pkg/queue); its
// envelope lines are printed under the names Postfix's postcat gives the
// matching records: message_size, message_arrival_time, named_attribute
// (name=value), sender_fullname, sender, original_recipient, recipient
// and done_recipient (a recipient already delivered or returned). The
// content follows in lines, split into header and body as Postfix does;
// with -v, each line is shown as the regular_text or unterminated_text
// records Postfix would have stored (lines longer than
// line_length_limit become several records). -o prints each record's
// offset in postdove's file, -d Postfix's record type number. -q takes
// queue IDs and finds each file in whichever queue holds it (named as
// Postfix names it: deferred/7/ID); otherwise the arguments are files, or
// standard input when there are none. -r is accepted: postdove's files
// have no pointer records to follow. A file that is not a queue file is
// skipped with a warning; a damaged one ends postcat with "fatal: record
// read error", as with Postfix.
//
// API: Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int.
package postcat
