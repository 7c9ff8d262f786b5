package doveadm

import (
	"fmt"
	"strings"

	"postdove/pkg/auth"
	"postdove/pkg/doveconf"
)

const (
	authTestUsage = "doveadm auth test [-a <auth socket path>] [-x <auth info>] [-M <master user>] <user> [<password>]"
	userUsage     = "doveadm user [-a <userdb socket path>] [-x <auth info>] [-f field] [-e <value>] [-u] <user mask> [<user mask> [...]]"
)

// authTest is doveadm auth test: authenticate USER with PASSWORD (asked
// for when not given) through the passdbs, and show the extra fields.
func (e *env) authTest(args []string) int {
	opts, rest, msg := getopt("auth test", args[1:], "a:x:M:")
	if msg != "" {
		fmt.Fprintln(e.stderr, msg)
	}
	if msg != "" || len(rest) < 1 || len(rest) > 2 {
		fmt.Fprintln(e.stderr, authTestUsage)
		return exitUsage
	}
	req := auth.Request{Service: "doveadm", User: rest[0], Secured: true}
	for _, op := range opts {
		if op[0] != "x" {
			continue
		}
		k, v, _ := strings.Cut(op[1], "=")
		switch k {
		case "service":
			req.Service = v
		case "rip":
			req.RemoteIP = v
		case "lip":
			req.LocalIP = v
		case "secured":
			req.Secured = v != "no" && v != "0"
		}
	}
	if len(rest) == 2 {
		req.Password = rest[1]
	} else {
		p, err := e.askPassword("Password: ")
		if err != nil {
			return e.fatal(exitTempFail, "%v", err)
		}
		req.Password = p
	}
	a, code := e.authenticator()
	if a == nil {
		return code
	}
	res, err := a.Authenticate(background(), req)
	if err != nil {
		if auth.KindOf(err) == auth.Temporary {
			fmt.Fprintf(e.stdout, "passdb: %s auth failed\n", rest[0])
			fmt.Fprintf(e.stderr, "Error: Authentication failed: %v\n", err)
			return exitTempFail
		}
		fmt.Fprintf(e.stdout, "passdb: %s auth failed\nextra fields:\n  user=%s\n", rest[0], a.Username(rest[0]))
		return exitNoPerm
	}
	fmt.Fprintf(e.stdout, "passdb: %s auth succeeded\nextra fields:\n", rest[0])
	for _, f := range res.Extra {
		if f.Value == "" && (f.Key == "proxy" || f.Key == "proxy_maybe") {
			fmt.Fprintf(e.stdout, "  %s\n", f.Key) // a flag
			continue
		}
		fmt.Fprintf(e.stdout, "  %s=%s\n", f.Key, f.Value)
	}
	// Dovecot's auth server adds an empty field to the reply when the
	// passdb gave userdb fields, and for the system passdbs; doveadm
	// prints it as an empty line. (Compared with Dovecot for shadow, pam
	// and passwd-file; passwd is assumed to be alike.)
	switch {
	case len(res.Userdb) > 0, res.Passdb == "shadow", res.Passdb == "pam", res.Passdb == "passwd":
		fmt.Fprintln(e.stdout, "  ")
	}
	return 0
}

// user is doveadm user: look users up in the userdbs and show their
// uid, gid, home and mail as a table ("field\tvalue"), or one field's
// value with -f.
func (e *env) user(args []string) int {
	opts, rest, msg := getopt("user", args[1:], "a:x:f:e:u")
	if msg != "" {
		fmt.Fprintln(e.stderr, msg)
	}
	if msg != "" || len(rest) < 1 {
		fmt.Fprintln(e.stderr, userUsage)
		return exitUsage
	}
	field := ""
	for _, op := range opts {
		if op[0] == "f" {
			field = op[1]
		}
	}
	a, code := e.authenticator()
	if a == nil {
		return code
	}
	cfg, _ := doveconf.Load(e.config)
	mailLocation := cfg.For(doveconf.Match{Protocol: "doveadm"}).Get("mail_location")
	if field == "" {
		fmt.Fprintln(e.stdout, "field\tvalue")
	}
	exit := 0
	for _, name := range rest {
		u, err := a.Lookup(background(), name)
		if err != nil {
			if auth.KindOf(err) == auth.UnknownUser {
				msg := fmt.Sprintf("\nuserdb lookup: user %s doesn't exist\n", name)
				if field == "" {
					fmt.Fprint(e.stdout, msg)
				} else {
					fmt.Fprint(e.stderr, msg)
				}
				exit = exitNoUser
				continue
			}
			fmt.Fprintf(e.stderr, "Error: userdb lookup(%s) failed: %v\n", name, err)
			exit = exitTempFail
			continue
		}
		// doveadm user shows the mail user it would set up: uid, gid,
		// home and mail, each even when empty, then the userdb's other
		// fields.
		mail, ok := fieldValue(u.Fields, "mail")
		if !ok {
			mail = mailLocation
		}
		uid, _ := fieldValue(u.Fields, "uid")
		gid, _ := fieldValue(u.Fields, "gid")
		shown := [][2]string{{"uid", uid}, {"gid", gid}, {"home", u.Home}, {"mail", mail}}
		if field != "" {
			v, ok := fieldValue(u.Fields, field)
			for _, f := range shown {
				if f[0] == field {
					v, ok = f[1], true
				}
			}
			if ok {
				fmt.Fprintln(e.stdout, v)
			}
			continue
		}
		for _, f := range shown {
			fmt.Fprintf(e.stdout, "%s\t%s\n", f[0], f[1])
		}
		for _, f := range u.Fields {
			switch f.Key {
			case "uid", "gid", "home", "mail":
			default:
				fmt.Fprintf(e.stdout, "%s\t%s\n", f.Key, f.Value)
			}
		}
	}
	if field == "" && len(rest) > 1 {
		fmt.Fprintln(e.stdout)
	}
	return exit
}

func fieldValue(fs []auth.Field, key string) (string, bool) {
	for _, f := range fs {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}
