package labnet

import (
	"testing"
)

func TestLabSmoke(t *testing.T) {
	lab := New(t)
	vm2 := lab.Host("vm2")
	t.Log(vm2.Must("hostname; ip -o addr; cat /etc/resolv.conf; dig +short MX ext.test; ls -la /usr/sbin/postfix /var/spool/mail /var/mail; id postfix"))
}
