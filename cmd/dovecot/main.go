// Command dovecot is Dovecot's master, as dovecot(1): it listens for IMAP
// and POP3 clients, logs them in and hands each to its user's mail
// process.
package main

import (
	"os"

	"postdove/pkg/dovecot"
	"postdove/pkg/imap"
)

func main() {
	dovecot.RegisterMailServer("imap", imap.NewServer())
	os.Exit(dovecot.Main(os.Args, os.Stdout, os.Stderr))
}
