module postdove

go 1.25.0

require (
	github.com/emersion/go-imap/v2 v2.0.0-beta.8
	github.com/emersion/go-msgauth v0.7.0 // indirect
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.25.1 // indirect
	github.com/go-crypt/crypt v0.14.15
	github.com/msteinert/pam/v2 v2.1.0
	github.com/spf13/pflag v1.0.10
	golang.org/x/sys v0.45.0
)

require (
	github.com/emersion/go-message v0.18.2
	github.com/go-crypt/x v0.4.16 // indirect
)
