// Package auth is postdove's Dovecot authentication: the passdb drivers
// (pam, shadow, passwd-file, static) and userdb drivers (passwd,
// passwd-file, static) that dovecot.conf's passdb and userdb blocks name,
// Dovecot's password schemes ({PLAIN}, {CRYPT}, {SHA512-CRYPT}, ...), the
// passwd-file format, auth_failure_delay, and the SASL PLAIN and LOGIN
// mechanisms. It stands in for Dovecot's auth process (doc/wiki
// "Authentication", "PasswordDatabase", "UserDatabase",
// "Authentication/PasswordSchemes"); IMAP, POP3, SMTP AUTH and doveadm
// use it in process.
package auth
