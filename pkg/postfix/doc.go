// Package postfix implements the postfix(1) control command: "postfix
// COMMAND" with Postfix's -c, -D and -v flags, its usage and "unknown
// command" messages and exit codes, and "postfix check", which validates
// main.cf, master.cf and the lookup tables they name (what Postfix's
// postfix-script does for "check", plus lint a student needs: CIDR keys in
// indexed tables, misspelt parameter names, tables newer than their index,
// missing tables).
//
// Each command is one entry in a table (see Register), so start, stop,
// reload and status can be added next to check without touching the
// dispatcher.
package postfix
