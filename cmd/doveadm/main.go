// Command doveadm is Dovecot's administration command, as doveadm(1):
// pw, auth test and user.
package main

import (
	"os"

	"postdove/pkg/doveadm"
)

func main() {
	os.Exit(doveadm.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
