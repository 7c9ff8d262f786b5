// Command postdrop writes a message into the maildrop queue; see
// postdove/pkg/postdrop.
package main

import (
	"os"

	"postdove/pkg/postdrop"
)

func main() {
	os.Exit(postdrop.Main(os.Args[1:], os.Stdin, os.Stderr))
}
