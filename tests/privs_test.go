package tests

import "testing"

// default_privs naming root, or an account that does not exist, stops
// "postfix check" and "postfix start" with Postfix's fatal error: mail to
// commands and files would otherwise run as root.
func TestCheckDefaultPrivs(t *testing.T) {
	l := checkNewLayout(t, "default_privs = root\n")
	want := "postfix: fatal: file " + l.conf + "/main.cf: parameter default_privs: user root has privileged user ID"
	checkWant(t, l.check(t), 1, want)
	t.Cleanup(func() { checkRun(t, "-c", l.conf, "stop") }) // should the start succeed
	checkWant(t, checkRun(t, "-c", l.conf, "start"), 1, want)

	l = checkNewLayout(t, "default_privs = pdt-no-such-user\n")
	checkWant(t, l.check(t), 1, "postfix: fatal: file "+l.conf+"/main.cf: parameter default_privs: unknown user name value: pdt-no-such-user")
}
