// Command postmap is postdove's postmap(1): see package postdove/pkg/postmap.
package main

import (
	"os"

	"postdove/pkg/postmap"
)

func main() {
	var f postmap.Flags
	fs := postmap.FlagSet("postmap", &f)
	if !postmap.Parse("postmap", fs, &f, os.Args[1:], os.Stderr) {
		os.Exit(1)
	}
	os.Exit(postmap.Run("postmap", f, os.Stdin, os.Stdout, os.Stderr))
}
