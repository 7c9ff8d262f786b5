// Command postmulti is postdove's postmulti(1), answering as a
// single-instance Postfix; see postdove/pkg/postmulti.
package main

import (
	"os"

	"postdove/pkg/postmulti"
)

func main() {
	os.Exit(postmulti.Main(os.Args[1:], postmulti.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
}
