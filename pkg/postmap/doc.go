// Package postmap is the engine behind postmap(1), postalias(1) and
// newaliases(1): it builds indexed lookup tables from their source files
// (postmap(1) "key value" text or aliases(5) text), queries, deletes from
// and lists them, with Postfix's messages and exit codes.
package postmap
