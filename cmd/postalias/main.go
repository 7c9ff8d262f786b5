// Command postalias is postdove's postalias(1): see package postdove/pkg/postmap.
package main

import (
	"os"

	"postdove/pkg/postmap"
)

func main() {
	os.Exit(postmap.Main("postalias", os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
