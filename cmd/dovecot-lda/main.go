// Command dovecot-lda delivers one message to a local mailbox, as
// Dovecot's dovecot-lda(1).
package main

import (
	"os"

	"postdove/pkg/lda"
)

func main() {
	os.Exit(lda.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
