// Package postconf is postdove's model of Postfix configuration: main.cf
// parameters with Postfix 3.7's built-in defaults and $name expansion, and
// master.cf services. It replaces Postfix's postconf(1) command (queries,
// and the editing of main.cf with -e/-#/-X and of master.cf with
// -M/-F/-P) and implements the file formats of postconf(5) and master(5);
// cmd/postconf is the command-line front end.
//
// Where main.cf does not set compatibility_level, the legacy defaults of
// Postfix's compatibility level 0 apply, as in CentOS 7's Postfix 2.10; see
// compat/testdata/postconf/DIFFERENCES for where we differ from Debian's
// Postfix 3.7 on purpose.
package postconf

//go:generate go run gen_defaults.go
