package postqueue

import (
	"regexp"
)

var (
	unknownFlag = regexp.MustCompile(`^unknown shorthand flag: '(.)'`)
	needsArg    = regexp.MustCompile(`^flag needs an argument: '(.)'`)
)

// GetoptMessage turns a pflag parse error into the line getopt(3) prints
// for Postfix's commands ("postqueue: invalid option -- 'x'"), or ""
// when there is no such line (Postfix then prints only its usage).
func GetoptMessage(prog string, err error) string {
	if m := unknownFlag.FindStringSubmatch(err.Error()); m != nil {
		return prog + ": invalid option -- '" + m[1] + "'"
	}
	if m := needsArg.FindStringSubmatch(err.Error()); m != nil {
		return prog + ": option requires an argument -- '" + m[1] + "'"
	}
	return ""
}
