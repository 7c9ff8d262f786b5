package labnet

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// zone is one of the zones host's named serves: its records in zone-file
// syntax, relative to the zone's name.
type zone struct {
	name    string
	records []string
}

func defaultZones() map[string]*zone {
	lab, ext := strings.Split(LabPrefix, "."), strings.Split(ExtPrefix, ".")
	rev := func(p []string) string { return p[2] + "." + p[1] + "." + p[0] + ".in-addr.arpa" }
	return map[string]*zone{
		Domain: {Domain, []string{
			"@ IN NS host",
			"host IN A " + LabPrefix + ".1",
			"vm2 IN A " + LabPrefix + ".2",
			"vm3 IN A " + LabPrefix + ".3",
		}},
		ExtDomain: {ExtDomain, []string{
			"@ IN NS host." + Domain + ".",
			"@ IN MX 10 mx",
			"mx IN A " + ExtPrefix + ".2",
		}},
		rev(lab): {rev(lab), []string{
			"@ IN NS host." + Domain + ".",
			"1 IN PTR host." + Domain + ".",
			"2 IN PTR vm2." + Domain + ".",
			"3 IN PTR vm3." + Domain + ".",
		}},
		rev(ext): {rev(ext), []string{
			"@ IN NS host." + Domain + ".",
			"1 IN PTR host." + Domain + ".",
			"2 IN PTR mx." + ExtDomain + ".",
		}},
	}
}

// zoneFile is the zone's master file at serial.
func (z *zone) file(serial int) string {
	return fmt.Sprintf("$TTL 60\n$ORIGIN %s.\n@ IN SOA host.%s. root.%s. ( %d 60 60 600 60 )\n%s\n",
		z.name, Domain, Domain, serial, strings.Join(z.records, "\n"))
}

// startNamed configures host's named for the lab's zones, starts it as
// Debian's unit does (named -u bind) and waits until it answers.
func (l *Lab) startNamed() error {
	h := l.hosts["host"]
	secret := make([]byte, 32)
	rand.Read(secret)
	key := fmt.Sprintf("key \"rndc-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"%s\";\n};\n", base64.StdEncoding.EncodeToString(secret))
	var conf strings.Builder
	conf.WriteString(`// written by postdove/compat/labnet
include "/etc/bind/rndc.key";
controls { inet 127.0.0.1 port 953 allow { 127.0.0.1; } keys { "rndc-key"; }; };
options {
	directory "/var/cache/bind";
	listen-on { any; };
	listen-on-v6 { none; };
	recursion no;
	allow-query { any; };
	dnssec-validation no;
	pid-file "/run/named/named.pid";
};
`)
	l.serial = 1
	for _, name := range l.zoneNames() {
		z := l.zones[name]
		fmt.Fprintf(&conf, "zone %q { type master; file \"/etc/bind/db.%s\"; };\n", name, name)
		if err := h.WriteFile("/etc/bind/db."+name, z.file(l.serial), 0o644); err != nil {
			return err
		}
	}
	if err := h.WriteFile("/etc/bind/rndc.key", key, 0o640); err != nil {
		return err
	}
	if err := h.WriteFile("/etc/bind/named.conf", conf.String(), 0o644); err != nil {
		return err
	}
	if r := h.Run("chgrp bind /etc/bind/rndc.key && install -d -o bind -g bind /run/named && named -u bind -c /etc/bind/named.conf </dev/null >/run/named/out 2>&1 || { cat /run/named/out; exit 1; }"); r.Code != 0 {
		return fmt.Errorf("host: named: %s%s", r.Stdout, r.Stderr)
	}
	return l.waitSerial(Domain, l.serial)
}

func (l *Lab) zoneNames() []string {
	var names []string
	for n := range l.zones {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// waitSerial waits until named serves zone at serial.
func (l *Lab) waitSerial(name string, serial int) error {
	h := l.hosts["host"]
	deadline := time.Now().Add(10 * time.Second)
	var r Result
	for time.Now().Before(deadline) {
		r = h.netRun("dig +short +norecurse +time=1 +tries=1 @127.0.0.1 SOA " + name)
		if f := strings.Fields(r.Stdout); len(f) >= 3 && f[2] == fmt.Sprint(serial) {
			return nil
		}
		time.Sleep(30 * time.Millisecond)
	}
	log, _ := h.ReadFile("/var/log/messages")
	return fmt.Errorf("host: named does not serve %s serial %d: %s%s\n%s", name, serial, r.Stdout, r.Stderr, log)
}

// AddRecord adds a record to one of the zones named serves (Domain,
// ExtDomain or a reverse zone), in zone-file syntax relative to the zone,
// e.g. "@ IN MX 10 vm3", and reloads the zone with `rndc reload`.
func (l *Lab) AddRecord(t testing.TB, name, rr string) {
	t.Helper()
	l.editZone(t, name, func(z *zone) { z.records = append(z.records, rr) })
}

// RemoveRecord takes a record added by AddRecord (or a default one) out
// of the zone and reloads it.
func (l *Lab) RemoveRecord(t testing.TB, name, rr string) {
	t.Helper()
	l.editZone(t, name, func(z *zone) {
		z.records = slices.DeleteFunc(z.records, func(r string) bool { return r == rr })
	})
}

func (l *Lab) editZone(t testing.TB, name string, edit func(*zone)) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	z := l.zones[name]
	if z == nil {
		t.Fatalf("labnet: no zone %q", name)
	}
	edit(z)
	l.serial++
	h := l.hosts["host"]
	if err := h.WriteFile("/etc/bind/db."+name, z.file(l.serial), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Must(t, "rndc reload "+name)
	if err := l.waitSerial(name, l.serial); err != nil {
		t.Fatal(err)
	}
}

// RestartNamed stops host's named and starts it again, as
// `systemctl restart named` on the lab's host.
func (l *Lab) RestartNamed(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.hosts["host"]
	h.Must(t, "rndc stop; while [ -e /run/named/named.pid ] && kill -0 $(cat /run/named/named.pid) 2>/dev/null; do sleep 0.05; done; named -u bind -c /etc/bind/named.conf </dev/null >/run/named/out 2>&1 || { cat /run/named/out; exit 1; }")
	if err := l.waitSerial(Domain, l.serial); err != nil {
		t.Fatal(err)
	}
}
