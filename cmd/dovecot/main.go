// Command dovecot is Dovecot's master, as dovecot(1): it listens for IMAP
// and POP3 clients, logs them in and hands each to its user's mail
// process, and serves LMTP on service lmtp's listeners.
package main

import (
	"os"

	"postdove/pkg/dovecot"
	"postdove/pkg/imap"
	"postdove/pkg/lmtp"
	"postdove/pkg/pop3"
)

func main() {
	dovecot.RegisterMailServer("imap", imap.NewServer())
	dovecot.RegisterMailServer("pop3", pop3.NewServer())
	dovecot.RegisterListener("lmtp", lmtp.Serve)
	os.Exit(dovecot.Main(os.Args, os.Stdout, os.Stderr))
}
