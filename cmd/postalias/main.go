// Command postalias is postdove's postalias(1): see package postdove/pkg/postmap.
package main

import (
	"os"

	"postdove/pkg/postmap"
)

func main() {
	var f postmap.Flags
	fs := postmap.FlagSet("postalias", &f)
	if !postmap.Parse("postalias", fs, &f, os.Args[1:], os.Stderr) {
		os.Exit(1)
	}
	os.Exit(postmap.Run("postalias", f, os.Stdin, os.Stdout, os.Stderr))
}
