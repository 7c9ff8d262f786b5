package labnet

import (
	"strings"
	"testing"
)

// TestSMTPOutbound: vm2, stock config but for nothing, mails
// root@ext.test: its smtp client finds ext's MX through host's named and
// delivers through host, the router, to ext's smtp-sink. Then, with
// relayhost = [vm3.DOMAIN], then vm3.DOMAIN as lab 4b Inv. 2B writes it,
// mail goes to vm3 (an smtp-sink here: vm3's smtpd comes with the SMTP
// server).
func TestSMTPOutbound(t *testing.T) {
	lab := New(t)
	vm2 := lab.Host("vm2")
	ext := lab.Host("ext").StartSink(t)
	vm2.Must(t, "systemctl start postfix")

	vm2.Must(t, "echo hello-ext | mail -s 'to the outside' root@"+ExtDomain)
	line := vm2.WaitLog(t, "postfix/smtp[", "to=<root@"+ExtDomain+">")
	if want := "relay=mx." + ExtDomain + "[" + ExtPrefix + ".2]:25"; !strings.Contains(line, want) || !strings.Contains(line, "status=sent") {
		t.Errorf("vm2's smtp line:\n%s\nwant %s and status=sent", line, want)
	}
	m := ext.Wait(t, "hello-ext")
	for _, want := range []string{"X-Client-Addr: " + lab.Addr("vm2"), "root@vm2." + Domain, "Subject: to the outside"} {
		if !strings.Contains(m, want) {
			t.Errorf("ext's message lacks %q:\n%s", want, m)
		}
	}

	vm3 := lab.Host("vm3").StartSink(t)
	vm2.Must(t, "postconf -e 'relayhost = [vm3."+Domain+"]' && systemctl reload postfix")
	vm2.Must(t, "echo hello-via-vm3 | mail -s 'through vm3' root@"+ExtDomain)
	m = vm3.Wait(t, "hello-via-vm3")
	if !strings.Contains(m, "X-Client-Addr: "+lab.Addr("vm2")) {
		t.Errorf("vm3's message:\n%s", m)
	}
	line = vm2.WaitLog(t, "postfix/smtp[", "relay=vm3."+Domain+"["+lab.Addr("vm3")+"]:25")
	if !strings.Contains(line, "status=sent") {
		t.Errorf("vm2's smtp line for the relayhost: %s", line)
	}

	// Lab 4b Inv. 2B's own words: relayhost = vm3.DOMAIN, without
	// brackets: an MX lookup that finds none, then vm3's address.
	vm2.Must(t, "sed -i 's/^relayhost = .*/relayhost = vm3."+Domain+"/' /etc/postfix/main.cf && systemctl restart postfix")
	vm2.Must(t, "echo hello-2b | mail -s 'lab 4b 2B' root@"+ExtDomain)
	vm3.Wait(t, "hello-2b")
	if len(ext.Messages()) != 1 {
		t.Errorf("ext got the relayed mail too:\n%s", strings.Join(ext.Messages(), "\n----\n"))
	}
}

// TestLab4bInv2AMX is vm2's side of lab 4b Inv. 2A: myorigin = $mydomain
// on vm2, an MX record for DOMAIN pointing to vm3 on host (dig answers),
// and mail from vm2 to root@DOMAIN goes to vm3 by that MX, from
// root@DOMAIN. (vm3 runs an smtp-sink until the SMTP server exists.)
func TestLab4bInv2AMX(t *testing.T) {
	lab := New(t)
	vm2 := lab.Host("vm2")
	vm3 := lab.Host("vm3").StartSink(t)
	vm2.Must(t, "sed -i 's/^#myorigin = \\$mydomain/myorigin = $mydomain/' /etc/postfix/main.cf && systemctl restart postfix")
	if got := vm2.Must(t, "postconf -h myorigin"); got != "$mydomain\n" {
		t.Fatalf("myorigin after the edit: %q", got)
	}
	if out := vm2.Must(t, "dig +short MX "+Domain); out != "" {
		t.Errorf("MX before the record: %q", out)
	}
	lab.AddRecord(t, Domain, "@ IN MX 10 vm3")
	if out := vm2.Must(t, "dig MX "+Domain); !strings.Contains(out, "MX\t10 vm3."+Domain+".") {
		t.Errorf("dig MX %s:\n%s", Domain, out)
	}
	vm2.Must(t, "echo to-the-domain | mail -s 'Lab4b - MX' root@"+Domain)
	m := vm3.Wait(t, "to-the-domain")
	for _, want := range []string{"X-Client-Addr: " + lab.Addr("vm2"), "X-Mail-Args: <root@" + Domain + ">", "From: root <root@" + Domain + ">"} {
		if !strings.Contains(m, want) {
			t.Errorf("vm3's message lacks %q:\n%s", want, m)
		}
	}
	vm2.WaitLog(t, "postfix/smtp[", "to=<root@"+Domain+">", "relay=vm3."+Domain+"["+lab.Addr("vm3")+"]:25", "status=sent")
}

// TestSMTPRefused: with nothing listening on ext, vm2's mail to
// root@ext.test stays in the queue, and mailq says why, as Postfix's does.
func TestSMTPRefused(t *testing.T) {
	lab := New(t)
	vm2 := lab.Host("vm2")
	vm2.Must(t, "systemctl start postfix && echo nobody-home | mail -s refused root@"+ExtDomain)
	why := "connect to mx." + ExtDomain + "[" + ExtPrefix + ".2]:25: Connection refused"
	line := vm2.WaitLog(t, "postfix/smtp[", "to=<root@"+ExtDomain+">", "status=deferred")
	if !strings.Contains(line, "("+why+")") {
		t.Errorf("vm2's smtp line: %s\nwant (%s)", line, why)
	}
	if q := vm2.Must(t, "mailq"); !strings.Contains(q, "("+why+")") || !strings.Contains(q, "root@"+ExtDomain) {
		t.Errorf("mailq:\n%s", q)
	}
}
