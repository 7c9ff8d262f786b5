// Command doveconf shows Dovecot's configuration, as doveconf(1).
package main

import (
	"os"

	"postdove/pkg/doveconf"
)

func main() {
	os.Exit(doveconf.Main(os.Args, os.Stdout, os.Stderr))
}
