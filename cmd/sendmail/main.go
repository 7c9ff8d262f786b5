// Command sendmail is Postfix's sendmail(1) interface, also mailq and
// newaliases by program name; see postdove/pkg/sendmail.
package main

import (
	"os"

	"postdove/pkg/sendmail"
)

func main() {
	os.Exit(sendmail.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
