package labnet

import (
	"strings"
	"testing"
	"time"
)

// Lab 4a leaves both machines so: listening on all interfaces, with the
// lab's domain, mail from root@vmN.DOMAIN.
const lab4aDone = "postconf -e 'inet_interfaces = all' 'mydomain = " + Domain + "' 'myorigin = $myhostname'"

// queueID is the queue ID of a Postfix log line: "... postfix/local[9]:
// 4F2A1C0D3E: to=<...".
func queueID(line string) string {
	_, rest, _ := strings.Cut(line, "]: ")
	id, _, _ := strings.Cut(rest, ":")
	return id
}

// reload is `systemctl reload postfix` on h; it returns once the master
// has logged this reload.
func reload(t *testing.T, h *Host) {
	t.Helper()
	reloads := func() int {
		b, _ := h.ReadFile("/var/log/maillog")
		return strings.Count(string(b), "]: reload -- version ")
	}
	before := reloads()
	h.Must(t, "systemctl reload postfix")
	for deadline := time.Now().Add(10 * time.Second); reloads() == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no reload in the maillog", h.Name)
		}
	}
}

// TestLab4bInv2 replays lab 4b's Investigation 2 on vm2 and vm3 after lab
// 4a, with vm3's own smtpd receiving.
//
// A: myorigin = $mydomain on both gives From root@DOMAIN; vm3's
// mydestination takes $mydomain; an MX record for DOMAIN on host's named
// points to vm3 (dig MX answers); root on vm2 mails root@DOMAIN and it
// lands in vm3's /var/spool/mail/root, as both maillogs show.
//
// B: relayhost = vm3.DOMAIN on vm2 sends everything through vm3. Mail to
// the outside domain relays only once vm3 trusts the lab subnet with
// mynetworks = 192.168.77.0/24; before, vm3 answers 454 Relay access
// denied (Postfix 2.10's defer_unauth_destination) and the mail waits in
// vm2's queue with that reason in mailq.
func TestLab4bInv2(t *testing.T) {
	lab := New(t)
	vm2, vm3 := lab.Host("vm2"), lab.Host("vm3")
	for _, h := range []*Host{vm2, vm3} {
		h.Must(t, lab4aDone+" && systemctl start postfix")
	}
	vm2Addr, vm3Addr := lab.Addr("vm2"), lab.Addr("vm3")
	vm3Relay := "relay=vm3." + Domain + "[" + vm3Addr + "]:25"

	ok := t.Run("A", func(t *testing.T) {
		for _, h := range []*Host{vm2, vm3} {
			h.Must(t, "sed -i 's/^myorigin = \\$myhostname$/myorigin = $mydomain/' /etc/postfix/main.cf && systemctl restart postfix")
			if got := h.Must(t, "postconf -h myorigin"); got != "$mydomain\n" {
				t.Fatalf("%s: myorigin after the edit: %q", h.Name, got)
			}
		}
		vm2.Must(t, "echo 'step 3' | mail -s 'Lab4b - vm2 to vm3' root@vm3."+Domain)
		vm3.WaitLog(t, "postfix/local[", "to=<root@vm3."+Domain+">", "status=sent (delivered to mailbox)")
		box, _ := vm3.ReadFile("/var/spool/mail/root")
		if !strings.Contains(string(box), "\nFrom: root <root@"+Domain+">\n") || !strings.HasPrefix(string(box), "From root@"+Domain+" ") {
			t.Errorf("vm3's mailbox: mail from vm2 is not from root@%s:\n%s", Domain, box)
		}

		vm3.Must(t, "sed -i 's/^mydestination = .*/mydestination = $mydomain, $myhostname, localhost.$mydomain, localhost/' /etc/postfix/main.cf")
		if got := vm3.Must(t, "postconf -h mydestination"); got != "$mydomain, $myhostname, localhost.$mydomain, localhost\n" {
			t.Fatalf("vm3's mydestination: %q", got)
		}
		lab.AddRecord(t, Domain, "@ IN MX 10 vm3")
		vm3.Must(t, "systemctl restart postfix")
		if out := vm2.Must(t, "dig MX "+Domain); !strings.Contains(out, Domain+".\t\t60\tIN\tMX\t10 vm3."+Domain+".") {
			t.Errorf("dig MX %s:\n%s", Domain, out)
		}

		vm2.Must(t, "echo 'to the domain' | mail -s 'Lab4b - to the domain' root@"+Domain)
		local := vm3.WaitLog(t, "postfix/local[", "to=<root@"+Domain+">", "status=sent (delivered to mailbox)")
		vm3.WaitLog(t, queueID(local)+": client=vm2."+Domain+"["+vm2Addr+"]")
		vm3.WaitLog(t, "postfix/smtpd[", "connect from vm2."+Domain+"["+vm2Addr+"]")
		vm2.WaitLog(t, "postfix/smtp[", "to=<root@"+Domain+">", vm3Relay, "status=sent (250 2.0.0 Ok: queued as "+queueID(local)+")")
		box, _ = vm3.ReadFile("/var/spool/mail/root")
		if !strings.Contains(string(box), "\nSubject: Lab4b - to the domain\n") {
			t.Errorf("vm3's mailbox lacks the mail to root@%s:\n%s", Domain, box)
		}
		if box, _ := vm2.ReadFile("/var/spool/mail/root"); strings.Contains(string(box), "to the domain") {
			t.Errorf("vm2 kept the mail to root@%s:\n%s", Domain, box)
		}
	})
	if !ok {
		return
	}

	t.Run("B", func(t *testing.T) {
		ext := lab.Host("ext").StartSink(t)
		vm2.Must(t, "sed -i 's/^#relayhost = vm3.yoursenecaid.ops$/relayhost = vm3."+Domain+"/' /etc/postfix/main.cf && systemctl restart postfix")
		if got := vm2.Must(t, "postconf -h relayhost"); got != "vm3."+Domain+"\n" {
			t.Fatalf("vm2's relayhost: %q", got)
		}
		// CentOS 7's stock mynetworks_style = subnet already trusts the
		// lab subnet once vm3 listens on it, so the lab's mynetworks
		// line changes nothing there. A vm3 that trusts only itself
		// (mynetworks_style = host, Postfix 3's later default) shows
		// what the line is for.
		if got := vm3.Must(t, "postconf -h mynetworks"); !strings.Contains(got, LabSubnet) {
			t.Errorf("vm3's stock mynetworks: %q, want the lab subnet in it", got)
		}
		vm3.Must(t, "postconf -e 'mynetworks_style = host'")
		reload(t, vm3)
		if got := vm3.Must(t, "postconf -h mynetworks"); strings.Contains(got, LabSubnet) {
			t.Fatalf("vm3's mynetworks with mynetworks_style = host: %q", got)
		}

		vm2.Must(t, "echo 'through vm3' | mail -s 'Lab4b - relayhost' root@"+ExtDomain)
		denied := "454 4.7.1 <root@" + ExtDomain + ">: Relay access denied"
		vm3.WaitLog(t, "postfix/smtpd[", "NOQUEUE: reject: RCPT from vm2."+Domain+"["+vm2Addr+"]: "+denied+"; from=<root@"+Domain+"> to=<root@"+ExtDomain+"> proto=ESMTP helo=<vm2."+Domain+">")
		why := "(host vm3." + Domain + "[" + vm3Addr + "] said: " + denied + " (in reply to RCPT TO command))"
		vm2.WaitLog(t, "postfix/smtp[", "to=<root@"+ExtDomain+">", vm3Relay, "status=deferred "+why)
		if q := vm2.Must(t, "mailq"); !strings.Contains(q, why) || !strings.Contains(q, "root@"+ExtDomain) {
			t.Errorf("vm2's mailq:\n%s\nwant %s", q, why)
		}

		vm3.Must(t, "sed -i 's|^#mynetworks = 192.168.X.0/24$|mynetworks = "+LabSubnet+"|' /etc/postfix/main.cf")
		reload(t, vm3)
		if got := vm3.Must(t, "postconf -h mynetworks"); got != LabSubnet+"\n" {
			t.Fatalf("vm3's mynetworks after the edit: %q", got)
		}
		vm2.Must(t, "postqueue -f")
		sent := vm2.WaitLog(t, "postfix/smtp[", "to=<root@"+ExtDomain+">", vm3Relay, "status=sent (250 2.0.0 Ok: queued as ")
		onward := vm3.WaitLog(t, "postfix/smtp[", "to=<root@"+ExtDomain+">", "relay=mx."+ExtDomain+"["+ExtPrefix+".2]:25", "status=sent")
		if id := queueID(onward); !strings.Contains(sent, "queued as "+id+")") {
			t.Errorf("vm3 relayed another message: vm2 %s\nvm3 %s", sent, onward)
		}
		vm3.WaitLog(t, queueID(onward)+": client=vm2."+Domain+"["+vm2Addr+"]")
		m := ext.Wait(t, "through vm3")
		for _, want := range []string{"X-Client-Addr: " + vm3Addr, "X-Mail-Args: <root@" + Domain + ">", "From: root <root@" + Domain + ">"} {
			if !strings.Contains(m, want) {
				t.Errorf("ext's message lacks %q:\n%s", want, m)
			}
		}
		if q := vm2.Must(t, "mailq"); q != "Mail queue is empty\n" {
			t.Errorf("vm2's mailq after the relay:\n%s", q)
		}
	})
}

// labMailServer makes vm3 the mail server lab 4b leaves: listening on
// all interfaces, mail for DOMAIN, the lab subnet trusted.
func labMailServer(t *testing.T, lab *Lab) *Host {
	t.Helper()
	vm3 := lab.Host("vm3")
	vm3.Must(t, "postconf -e 'inet_interfaces = all' 'mydomain = "+Domain+"' 'myorigin = $mydomain'"+
		" 'mydestination = $mydomain, $myhostname, localhost.$mydomain, localhost' 'mynetworks = "+LabSubnet+"'"+
		" && systemctl start postfix")
	return vm3
}

// TestOpenRelay: vm3 as lab 4b leaves it relays for the lab subnet only.
// From ext, the outside mail server, and from host's outside address
// (172.30.77.1, not in mynetworks), the classic tricks to reach ext.test
// through it are refused, with Postfix 3.7's replies for the same
// commands (checked against the oracle's smtpd): the percent hack, a
// quoted "user@ext" local part, a source route, a bang path, unqualified
// user%ext and ext!user, an upper-case domain, a domain literal, no HELO
// or an empty one, and a sender in the local domain. Nothing reaches ext
// but the one mail host sends from its lab address, which vm3 trusts.
func TestOpenRelay(t *testing.T) {
	lab := New(t)
	vm3 := labMailServer(t, lab)
	sink := lab.Host("ext").StartSink(t)
	host := lab.Host("host")
	server := "vm3." + Domain
	denied := func(shown string) string { return "454 4.7.1 <" + shown + ">: Relay access denied" }
	// Two sessions of tricks, each under smtpd_soft_error_limit (10),
	// past which smtpd sleeps a second before each reply.
	tricks := []step{
		{"MAIL FROM:<spammer@" + ExtDomain + ">", "250 2.1.0 Ok"},
		{"RCPT TO:<user@" + ExtDomain + ">", denied("user@" + ExtDomain)},
		{"RCPT TO:<user%" + ExtDomain + "@" + server + ">", denied("user%" + ExtDomain + "@" + server)},
		{"RCPT TO:<user%" + ExtDomain + "@" + Domain + ">", denied("user%" + ExtDomain + "@" + Domain)},
		{"RCPT TO:<\"user@" + ExtDomain + "\"@" + server + ">", denied("user@" + ExtDomain + "@" + server)},
		{"RCPT TO:<@" + server + ":user@" + ExtDomain + ">", denied("user@" + ExtDomain)},
		{"RCPT TO:<@" + Domain + ",@" + server + ":user@" + ExtDomain + ">", denied("user@" + ExtDomain)},
		{"RCPT TO:<" + ExtDomain + "!user@" + server + ">", denied(ExtDomain + "!user@" + server)},
		{"QUIT", "221 2.0.0 Bye"},
	}
	moreTricks := []step{
		{"MAIL FROM:<spammer@" + ExtDomain + ">", "250 2.1.0 Ok"},
		{"RCPT TO:<user%" + ExtDomain + ">", denied("user%" + ExtDomain)},
		{"RCPT TO:<" + ExtDomain + "!user>", denied(ExtDomain + "!user")},
		{"RCPT TO:<\"user@" + ExtDomain + "\">", denied("user@" + ExtDomain)},
		{"RCPT TO:<USER@EXT.TEST>", denied("USER@EXT.TEST")},
		{"RCPT TO:<user@" + ExtDomain + ".>", denied("user@" + ExtDomain + ".")},
		{"RCPT TO:<user@[" + ExtPrefix + ".2]>", denied("user@[" + ExtPrefix + ".2]")},
		// vm3 still takes mail for its own users, and knows who they are.
		{"RCPT TO:<nosuchuser@" + Domain + ">", "550 5.1.1 <nosuchuser@" + Domain + ">: Recipient address rejected: User unknown in local recipient table"},
		{"RCPT TO:<root@" + strings.ToUpper(Domain) + ">", "250 2.1.5 Ok"},
		{"QUIT", "221 2.0.0 Bye"},
	}
	noHelo := []step{
		{"MAIL FROM:<root@" + Domain + ">", "250 2.1.0 Ok"},
		{"RCPT TO:<user@" + ExtDomain + ">", denied("user@" + ExtDomain)},
		{"QUIT", "221 2.0.0 Bye"},
	}
	emptyHelo := []step{
		{"HELO", "501 Syntax: HELO hostname"},
		{"EHLO", "501 Syntax: EHLO hostname"},
		{"MAIL FROM:<>", "250 2.1.0 Ok"},
		{"RCPT TO:<user@" + ExtDomain + ">", denied("user@" + ExtDomain)},
		{"QUIT", "221 2.0.0 Bye"},
	}
	for _, c := range []struct {
		from           *Host
		source, client string
	}{
		{lab.Host("ext"), "", "mx." + ExtDomain + "[" + ExtPrefix + ".2]"},
		// host.DOMAIN does not resolve to its outside address: unknown.
		{host, ExtPrefix + ".1", "unknown[" + ExtPrefix + ".1]"},
	} {
		ehlo := step{"EHLO " + c.from.FQDN, "250-vm3." + Domain}
		smtpDialog(t, c.from, server, c.source, append([]step{ehlo}, tricks...)...)
		smtpDialog(t, c.from, server, c.source, append([]step{ehlo}, moreTricks...)...)
		smtpDialog(t, c.from, server, c.source, noHelo...)
		smtpDialog(t, c.from, server, c.source, emptyHelo...)
		vm3.WaitLog(t, "postfix/smtpd[", "NOQUEUE: reject: RCPT from "+c.client+": "+denied("user@"+ExtDomain)+"; from=<spammer@"+ExtDomain+"> to=<user@"+ExtDomain+"> proto=ESMTP helo=<"+c.from.FQDN+">")
		// No HELO, no helo=<> in the log line.
		if l := vm3.WaitLog(t, "postfix/smtpd[", "NOQUEUE: reject: RCPT from "+c.client+": "+denied("user@"+ExtDomain)+"; from=<root@"+Domain+"> to=<user@"+ExtDomain+"> proto=SMTP"); !strings.HasSuffix(l, " proto=SMTP") {
			t.Errorf("vm3's reject line without HELO: %s", l)
		}
	}

	// From its lab address host may relay (mynetworks): the path to ext
	// works, and what reaches ext is this mail alone.
	smtpDialog(t, host, server, "",
		step{"EHLO " + host.FQDN, "250-vm3." + Domain},
		step{"MAIL FROM:<root@" + host.FQDN + ">", "250 2.1.0 Ok"},
		step{"RCPT TO:<user@" + ExtDomain + ">", "250 2.1.5 Ok"},
		step{"DATA", "354 "},
		step{"Subject: trusted\r\n\r\nfrom the lab subnet\r\n.", "250 2.0.0 Ok: queued as "},
		step{"QUIT", "221 2.0.0 Bye"})
	m := sink.Wait(t, "from the lab subnet")
	if !strings.Contains(m, "X-Client-Addr: "+lab.Addr("vm3")) {
		t.Errorf("ext's message:\n%s", m)
	}
	vm3.WaitLog(t, "postfix/qmgr[", "removed")
	if msgs := sink.Messages(); len(msgs) != 1 {
		t.Errorf("ext got %d messages:\n%s", len(msgs), strings.Join(msgs, "\n----\n"))
	}
	if q := vm3.Must(t, "mailq"); q != "Mail queue is empty\n" {
		t.Errorf("vm3's mailq:\n%s", q)
	}
}

// TestClientAccessNotes replays the notes' host-based restriction on vm3,
// with the lab subnet for 192.168.2 and host (.1) as the rejected client,
// and then what the notes leave out, as Postfix behaves:
//   - verbatim, smtpd_client_restrictions = hash:/etc/postfix/access with
//     "192.168.77.0/24 OK" and "192.168.77.1 REJECT", postmap, reload:
//     host gets 554 Client host rejected, vm2 and ext are accepted;
//   - with a final reject, vm2 is refused too: a hash table is searched for
//     the client's address and its shorter octet prefixes (192.168.77),
//     never for a CIDR block, so the /24 line matches nothing; a
//     "192.168.77 OK" line lets the subnet in again, host still out;
//   - a cidr table does match the /24, first match winning: in the notes'
//     order host is let in by it, with the REJECT line first host is out.
func TestClientAccessNotes(t *testing.T) {
	lab := New(t)
	vm3 := labMailServer(t, lab)
	host, vm2, ext := lab.Host("host"), lab.Host("vm2"), lab.Host("ext")
	accepted := "250 2.1.5 Ok"
	rejected := func(h *Host) string {
		return "554 5.7.1 <" + h.FQDN + "[" + h.Addrs[0] + "]>: Client host rejected: Access denied"
	}
	// expect checks each client's RCPT TO:<root@DOMAIN> gets its reply.
	expect := func(t *testing.T, hostWant, vm2Want, extWant string) {
		t.Helper()
		for _, c := range []struct {
			h    *Host
			want string
		}{{host, hostWant}, {vm2, vm2Want}, {ext, extWant}} {
			smtpDialog(t, c.h, "vm3."+Domain, "",
				step{"EHLO " + c.h.FQDN, "250-vm3." + Domain},
				step{"MAIL FROM:<root@" + c.h.FQDN + ">", "250 2.1.0 Ok"},
				step{"RCPT TO:<root@" + Domain + ">", c.want},
				step{"QUIT", "221 2.0.0 Bye"})
		}
	}

	t.Run("hash", func(t *testing.T) {
		vm3.Must(t, "postconf -e 'smtpd_client_restrictions = hash:/etc/postfix/access'"+
			" && echo '"+LabSubnet+" OK' >> /etc/postfix/access && echo '"+lab.Addr("host")+" REJECT' >> /etc/postfix/access"+
			" && postmap /etc/postfix/access")
		reload(t, vm3)
		expect(t, rejected(host), accepted, accepted)
		vm3.WaitLog(t, "postfix/smtpd[", "NOQUEUE: reject: RCPT from host."+Domain+"["+lab.Addr("host")+"]: "+rejected(host)+
			"; from=<root@host."+Domain+"> to=<root@"+Domain+"> proto=ESMTP helo=<host."+Domain+">")
		if out := vm3.Must(t, "postmap -q "+LabSubnet+" hash:/etc/postfix/access"); out != "OK\n" {
			t.Errorf("postmap -q %s: %q", LabSubnet, out)
		}
		// postdove's postfix check says so.
		r := vm3.Run("postfix check")
		if want := `never matches network "` + LabSubnet + `"`; !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, `"`+LabPrefix+`"`) {
			t.Errorf("postfix check: exit %d\n%s%s\nwant %s and the prefix %s", r.Code, r.Stdout, r.Stderr, want, LabPrefix)
		}

		vm3.Must(t, "postconf -e 'smtpd_client_restrictions = hash:/etc/postfix/access, reject'")
		reload(t, vm3)
		expect(t, rejected(host), rejected(vm2), rejected(ext))

		vm3.Must(t, "echo '"+LabPrefix+" OK' >> /etc/postfix/access && postmap /etc/postfix/access")
		reload(t, vm3)
		expect(t, rejected(host), accepted, rejected(ext))
	})

	t.Run("cidr", func(t *testing.T) {
		vm3.Must(t, "printf '"+LabSubnet+" OK\\n"+lab.Addr("host")+" REJECT\\n' > /etc/postfix/access.cidr"+
			" && postconf -e 'smtpd_client_restrictions = check_client_access cidr:/etc/postfix/access.cidr, reject'")
		reload(t, vm3)
		expect(t, accepted, accepted, rejected(ext))

		vm3.Must(t, "printf '"+lab.Addr("host")+" REJECT\\n"+LabSubnet+" OK\\n' > /etc/postfix/access.cidr")
		reload(t, vm3)
		expect(t, rejected(host), accepted, rejected(ext))
		vm3.WaitLog(t, "postfix/smtpd[", "NOQUEUE: reject: RCPT from mx."+ExtDomain+"["+lab.Addr("ext")+"]: "+rejected(ext)+
			"; from=<root@mx."+ExtDomain+"> to=<root@"+Domain+"> proto=ESMTP helo=<mx."+ExtDomain+">")
	})
}
