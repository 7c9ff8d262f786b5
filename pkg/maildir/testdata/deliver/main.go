// Command deliver saves standard input into the INBOX of the Maildir named
// by its argument through the store, as an LDA run per message does. The
// benchmarks exec it to compare with Dovecot's dovecot-lda.
package main

import (
	"fmt"
	"os"

	"postdove/pkg/maildir"
)

func main() {
	mb, err := maildir.OpenStore(os.Args[1], maildir.Options{UID: -1, GID: -1}).Mailbox("INBOX")
	if err == nil {
		_, _, err = mb.Deliver(os.Stdin, maildir.DeliverOptions{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(75)
	}
}
