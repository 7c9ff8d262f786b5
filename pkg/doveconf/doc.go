// Package doveconf is postdove's model of Dovecot's configuration: the
// dovecot.conf grammar (settings, nested sections, protocol/local/remote
// filters, !include and !include_try with globs, "<file" values, quoted
// values, "$name" self-references and continuation lines), Dovecot 2.3's
// built-in defaults and types, and the typed accessors the Dovecot-side
// daemons read. It replaces Dovecot's doveconf(1) command; cmd/doveconf is
// the command-line front end. Errors and output follow Dovecot 2.3's
// wording; compat/testdata/doveconf/DIFFERENCES lists where postdove
// differs on purpose.
//
// A daemon reads its settings so:
//
//	cfg, err := doveconf.Load(doveconf.DefaultPath)
//	if err == nil {
//		err = cfg.Conflict()
//	}
//	if err != nil { ... } // err's text is Dovecot's: "Error in configuration file F line N: ..."
//	s := cfg.For(doveconf.Match{Protocol: "imap", Local: "10.0.0.1", Remote: "10.0.0.2"})
//	s.Bool("disable_plaintext_auth")
//	s.Duration("auth_failure_delay")
//	loc := s.MailLocation().Expand(doveconf.Vars{User: "alice", Home: "/home/alice"})
//	for _, ns := range s.Namespaces() { ... }
//	svc, _ := s.Service("imap-login") // svc.Listeners: ports, addresses, ssl
//	cert, err := s.File("ssl_cert")     // the content of "</etc/pki/dovecot/certs/dovecot.pem"
//
// Check makes the whole-configuration checks doveconf makes (the
// unprivileged accounts exist, listen is not empty, every passdb and
// userdb has a driver, the client workarounds are known).
package doveconf

//go:generate go run gen_defaults.go
