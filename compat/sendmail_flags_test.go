package compat

import (
	"fmt"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// TestSendmailQueueFlagsMatchPostfix runs sendmail's queue, daemon and
// alias flags (-q, -qR, -qI, -qinterval, -bd, -bl, -bh, -I), good and bad,
// against the real Postfix and postdove, each with its mail system
// running, and compares exit codes and messages.
func TestSendmailQueueFlagsMatchPostfix(t *testing.T) {
	systems := runtimeSystems(t, oracle.PostfixOptions{})
	for _, args := range []string{
		"-I", "-bd", "-bl", "-q", "-q5m", "-q1h30m", "-q5m x", "-bh x", "-q5m -bp",
		"-qRexample.com", "-qR@foo", "-qR1.2.3.4", "-qR[1.2.3.4]", "-qIABCDEF", "-qI/etc", "-qIfoo -qRbar",
		"-qR", "-qI", "-qS", "-qSfoo", "-qx", "-qbogus", "-bz", "-bD",
		"-bp -qRfoo", "-q -qIfoo", "-bd -qRfoo x",
		"-I x", "-bd x", "-q x", "-qRfoo x", "-qIABC x", "-bp x", "-bs x",
		"-bd -q", "-q -bd", "-bd -q x",
	} {
		var got [2]string
		for i, inst := range systems {
			res := oracle.Run(inst.Sendmail(strings.Fields(args)...), "")
			got[i] = fmt.Sprintf("exit %d\n%s\n%s", res.Code, strings.Join(oracle.StderrShape(res.Stderr), "\n"), res.Stdout)
		}
		if got[0] != got[1] {
			t.Errorf("sendmail %s:\npostfix:  %q\npostdove: %q", args, got[0], got[1])
		}
	}
}
