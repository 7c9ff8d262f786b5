// Command postlock is postdove's postlock(1): it runs a command while
// holding a mailbox's locks; see postdove/pkg/postlock.
package main

import (
	"os"

	"postdove/pkg/postlock"
)

func main() {
	os.Exit(postlock.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
