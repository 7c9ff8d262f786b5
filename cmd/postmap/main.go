// Command postmap is postdove's postmap(1): see package postdove/pkg/postmap.
package main

import (
	"os"

	"postdove/pkg/postmap"
)

func main() {
	os.Exit(postmap.Main("postmap", os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
