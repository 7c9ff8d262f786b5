// Command postcat is postdove's postcat(1): it prints queue files; see
// postdove/pkg/postcat.
package main

import (
	"os"

	"postdove/pkg/postcat"
)

func main() {
	os.Exit(postcat.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
