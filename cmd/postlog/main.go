// Command postlog is postdove's postlog(1): it logs text to the maillog;
// see postdove/pkg/postlog.
package main

import (
	"os"

	"postdove/pkg/postlog"
)

func main() {
	os.Exit(postlog.Main(os.Args[1:], os.Stdin, os.Stderr))
}
