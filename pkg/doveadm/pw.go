package doveadm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"postdove/pkg/auth"
)

// pw is doveadm pw: hash a password, or check one against a hash (-t).
func (e *env) pw(args []string) int {
	opts, rest, msg := getopt("pw", args[1:], "lp:r:s:t:u:V")
	if msg != "" {
		fmt.Fprintln(e.stderr, msg)
		return exitUsage
	}
	if len(rest) > 0 {
		fmt.Fprintln(e.stderr, "doveadm pw [-l] [-p plaintext] [-r rounds] [-s scheme] [-t hash] [-u user] [-V]")
		return exitUsage
	}
	scheme, password, test := "CRYPT", "", ""
	var o auth.GenOptions
	havePass, reverse := false, false
	for _, op := range opts {
		switch op[0] {
		case "l":
			fmt.Fprintln(e.stdout, strings.Join(auth.Schemes(), " ")+" ")
			return 0
		case "p":
			password, havePass = op[1], true
		case "r":
			n, err := strconv.Atoi(op[1])
			if err != nil || n <= 0 {
				return e.fatal(exitTempFail, "Invalid number of rounds: %s", op[1])
			}
			o.Rounds = n
		case "s":
			scheme = strings.ToUpper(op[1])
		case "t":
			test = op[1]
		case "u":
			o.User = op[1]
		case "V":
			reverse = true
		}
	}
	if test != "" {
		// -t: the scheme is the hash's own.
		s, _ := auth.SplitScheme(test, scheme)
		scheme = s
	}
	if _, err := auth.Generate(scheme, "", o); errors.Is(err, auth.ErrUnknownScheme) {
		if test != "" {
			return e.fatal(exitTempFail, "reverse decode check failed: Unknown scheme")
		}
		return e.fatal(exitTempFail, "Unknown scheme: %s", scheme)
	}
	if !havePass {
		var err error
		if password, err = e.askPassword("Enter new password: "); err != nil {
			return e.fatal(exitTempFail, "%v", err)
		}
		if test == "" && e.tty != nil {
			again, err := e.askPassword("Retype new password: ")
			if err != nil {
				return e.fatal(exitTempFail, "%v", err)
			}
			if again != password {
				return e.fatal(exitTempFail, "Passwords don't match!")
			}
		}
	}
	if test != "" {
		return e.verify(test, password, scheme)
	}
	h, err := auth.Generate(scheme, password, o)
	if err != nil {
		return e.fatal(exitTempFail, "%v", err)
	}
	if reverse {
		return e.verify(h, password, scheme)
	}
	fmt.Fprintln(e.stdout, h)
	return 0
}

// verify prints "HASH (verified)" when password matches, as -t and -V do.
func (e *env) verify(hash, password, scheme string) int {
	ok, err := auth.Verify(hash, password, scheme)
	if errors.Is(err, auth.ErrUnknownScheme) {
		return e.fatal(exitTempFail, "reverse decode check failed: Unknown scheme")
	}
	if err != nil {
		return e.fatal(exitTempFail, "reverse decode check failed: %v", err)
	}
	if !ok {
		return e.fatal(exitTempFail, "reverse password verification check failed: Password mismatch")
	}
	fmt.Fprintln(e.stdout, hash+" (verified)")
	return 0
}
