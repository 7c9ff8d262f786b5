// Package doveadm is postdove's doveadm(1): Dovecot's administration
// command. It implements the authentication commands, doveadm-pw(1),
// doveadm-auth(1) "test" and doveadm-user(1), in process through package
// auth rather than through a running auth server's sockets, with
// Dovecot 2.3's output, messages and exit codes.
package doveadm
