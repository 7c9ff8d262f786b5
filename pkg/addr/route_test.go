package addr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Routes follow trivial-rewrite(8) and transport(5): the class gives
// the transport and next hop, a transport_maps entry (full address,
// user@domain, domain, .parent, *) overrides their non-empty parts.
func TestRoute(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "transport")
	os.WriteFile(table, []byte(`
example.com      smtp:[127.0.0.2]:2525
.example.com     relay:[gw.example.com]
bob@example.net  error:5.1.1 bob has left
example.net      lmtp:unix:/run/dovecot/lmtp
gone.example     error:
quiet.example    discard:silently
nohop.example    smtp:
local.example    local:
other.example    :[10.1.2.3]
alice+x@vm2.example.ops  retry:4.3.2 not now
`), 0644)
	r := &Router{
		Resolver: &Resolver{
			MyHostname:            "vm2.example.ops",
			MyDestination:         []string{"vm2.example.ops", "localhost"},
			VirtualAliasDomains:   []string{"alias.example"},
			VirtualMailboxDomains: []string{"mbox.example"},
			RelayDomains:          []string{"relay.example"},
		},
		LocalTransport: "local:$myhostname", VirtualTransport: "virtual", RelayTransport: "relay", DefaultTransport: "smtp",
		RecipientDelimiter: "+",
	}
	r.LocalTransport = "local:vm2.example.ops"
	cases := []struct{ in, tr, hop string }{
		{"root@vm2.example.ops", "local", "vm2.example.ops"},
		{"root", "local", "vm2.example.ops"},
		{"x@alias.example", "error", "5.1.1 User unknown in virtual alias table"},
		{"x@mbox.example", "virtual", "mbox.example"},
		{"x@relay.example", "relay", "relay.example"},
		{"x@far.example", "smtp", "far.example"},
	}
	check := func(stage string) {
		t.Helper()
		for _, c := range cases {
			rt, err := r.Route(c.in)
			if err != nil || rt.Transport != c.tr || rt.Nexthop != c.hop {
				t.Errorf("%s: Route(%q) = %+v, %v; want %s:%s", stage, c.in, rt, err, c.tr, c.hop)
			}
		}
	}
	check("classes")

	r.RelayHost = "[mail.isp.example]:587"
	cases[4].hop, cases[5].hop = "[mail.isp.example]:587", "[mail.isp.example]:587"
	check("relayhost")

	r.DefaultTransport = "error:mail for other domains is not accepted"
	cases[5].tr, cases[5].hop = "error", "mail for other domains is not accepted"
	check("default_transport with a next hop")

	r.DefaultTransport = "smtp"
	r.TransportMaps = []string{"texthash:" + table}
	cases[5].tr, cases[5].hop = "smtp", "[mail.isp.example]:587"
	cases = append(cases, []struct{ in, tr, hop string }{
		{"u@example.com", "smtp", "[127.0.0.2]:2525"},
		{"u@EXAMPLE.com", "smtp", "[127.0.0.2]:2525"},
		{"u@a.b.example.com", "relay", "[gw.example.com]"},
		{"bob@example.net", "error", "5.1.1 bob has left"},
		{"Bob@example.net", "error", "5.1.1 bob has left"},
		{"carol@example.net", "lmtp", "unix:/run/dovecot/lmtp"},
		{"u@gone.example", "error", ""},
		{"u@quiet.example", "discard", "silently"},
		{"u@nohop.example", "smtp", "[mail.isp.example]:587"},
		{"u@local.example", "local", "[mail.isp.example]:587"},
		{"u@other.example", "smtp", "[10.1.2.3]"},
		{"alice+x@vm2.example.ops", "retry", "4.3.2 not now"},
		{"alice@vm2.example.ops", "local", "vm2.example.ops"},
	}...)
	check("transport_maps")

	r.RelayHost = ""
	os.WriteFile(table, []byte("* smtp:[smarthost]\nexample.com discard:\n"), 0644)
	r.Resolver.tables = nil
	cases = []struct{ in, tr, hop string }{
		{"u@example.com", "discard", "example.com"},
		{"u@sub.example.com", "smtp", "[smarthost]"},
		{"root@vm2.example.ops", "smtp", "[smarthost]"},
		{"root", "smtp", "[smarthost]"},
	}
	check("wildcard")
}

// A transport_maps table that cannot be read is a temporary failure,
// not "no entry".
func TestRouteTableProblem(t *testing.T) {
	spec := "texthash:" + filepath.Join(t.TempDir(), "missing")
	r := &Router{Resolver: &Resolver{MyHostname: "h"}, TransportMaps: []string{spec}}
	_, err := r.Route("u@example.com")
	var te *TableError
	if !errors.As(err, &te) || te.Param != "transport_maps" {
		t.Fatalf("Route = %v", err)
	}
}

// sender_dependent_relayhost_maps replaces relayhost for mail from a
// sender (user@domain, then @domain, the null sender by its lookup key);
// local mail and transport_maps next hops are not affected.
func TestRouteFrom(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "relayhosts")
	os.WriteFile(table, []byte("alice@example.com [smtp.alice.example]:587\n@example.com [smtp.example.com]\n<> [bounces.example]\n"), 0644)
	tm := filepath.Join(dir, "transport")
	os.WriteFile(tm, []byte("pinned.example smtp:[pinned]\n"), 0644)
	r := &Router{
		Resolver:            &Resolver{MyHostname: "vm2.example.ops", MyDestination: []string{"vm2.example.ops"}, RelayHost: "[isp.example]"},
		SenderRelayhostMaps: []string{"texthash:" + table}, NullSenderKey: "<>",
		TransportMaps: []string{"texthash:" + tm},
	}
	for _, c := range []struct{ rcpt, sender, tr, hop string }{
		{"x@far.example", "alice@example.com", "smtp", "[smtp.alice.example]:587"},
		{"x@far.example", "Bob@Example.COM", "smtp", "[smtp.example.com]"},
		{"x@far.example", "carol@other.example", "smtp", "[isp.example]"},
		{"x@far.example", "", "smtp", "[bounces.example]"},
		{"root@vm2.example.ops", "alice@example.com", "local", "vm2.example.ops"},
		{"x@pinned.example", "alice@example.com", "smtp", "[pinned]"},
	} {
		rt, err := r.RouteFrom(c.rcpt, c.sender)
		if err != nil || rt.Transport != c.tr || rt.Nexthop != c.hop {
			t.Errorf("RouteFrom(%q, %q) = %+v, %v; want %s:%s", c.rcpt, c.sender, rt, err, c.tr, c.hop)
		}
	}
}
