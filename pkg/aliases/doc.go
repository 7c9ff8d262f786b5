// Package aliases reads the Postfix aliases(5) file format (/etc/aliases):
// "name: value, value" entries with RFC 822 tokenization of names and
// values, as postalias(1) and newaliases store them, and splits an alias
// value into typed delivery targets for local(8).
package aliases
