// Package doveconf is postdove's model of Dovecot's configuration: the
// dovecot.conf grammar (settings, nested sections, protocol/local/remote
// filters, !include and !include_try with globs, "<file" values, quoted
// values, "$name" self-references and continuation lines), Dovecot 2.3's
// built-in defaults and types, and the typed accessors the Dovecot-side
// daemons read. It replaces Dovecot's doveconf(1) command; cmd/doveconf is
// the command-line front end. Errors and output follow Dovecot 2.3's
// wording; compat/testdata/doveconf/DIFFERENCES lists where postdove
// differs on purpose.
package doveconf

//go:generate go run gen_defaults.go
