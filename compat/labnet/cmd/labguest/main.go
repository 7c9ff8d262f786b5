// Command labguest runs inside compat/labnet's hosts: as `labguest init`
// it is a host's first process, and installed as systemctl it is the
// host's systemctl. It is built by the harness, never installed.
package main

import (
	"os"
	"path/filepath"

	"postdove/compat/labnet/guest"
)

func main() {
	if filepath.Base(os.Args[0]) == "systemctl" {
		os.Exit(guest.Systemctl(os.Args[1:], os.Stdout, os.Stderr))
	}
	if len(os.Args) == 2 && os.Args[1] == "init" {
		os.Exit(guest.Init())
	}
	os.Stderr.WriteString("usage: labguest init | systemctl ...\n")
	os.Exit(2)
}
