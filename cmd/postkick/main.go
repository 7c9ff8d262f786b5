// Command postkick is postdove's postkick(1): it sends a request to a mail
// system service; see postdove/pkg/postkick.
package main

import (
	"os"

	"postdove/pkg/postkick"
)

func main() {
	os.Exit(postkick.Main(os.Args[1:], os.Stderr))
}
