module postdove

go 1.25.0

require (
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/go-crypt/crypt v0.14.15
	github.com/msteinert/pam/v2 v2.1.0
	github.com/spf13/pflag v1.0.10
)

require (
	github.com/go-crypt/x v0.4.16 // indirect
	golang.org/x/sys v0.45.0 // indirect
)
