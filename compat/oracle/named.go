package oracle

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Zone is one primary zone for StartNamed: its name and its zone file's
// text ("" for a zone whose file is missing, which named serves as
// SERVFAIL).
type Zone struct{ Name, Text string }

// StartNamed runs Debian's named (bind9) in the foreground on ip:port,
// authoritative for zones, without recursion, until the test ends, and
// returns a resolver that asks it. It waits until named answers for the
// first zone's NS host ns.<zone>. Without named the test is skipped, or
// fails under CI.
func StartNamed(t testing.TB, ip string, port int, zones ...Zone) *net.Resolver {
	t.Helper()
	named, err := exec.LookPath("named")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("named (bind9) is not installed")
		}
		t.Skip("named (bind9) is not installed")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	var conf strings.Builder
	fmt.Fprintf(&conf, "options {\n\tdirectory %q;\n\tpid-file none;\n\tlisten-on port %d { %s; };\n\tlisten-on-v6 { none; };\n"+
		"\trecursion no;\n\tallow-query { any; };\n\tdnssec-validation no;\n};\ncontrols { };\n", dir, port, ip)
	for _, z := range zones {
		file := "db." + z.Name
		fmt.Fprintf(&conf, "zone %q { type primary; file %q; };\n", z.Name, file)
		if z.Text != "" {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(z.Text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(named, "-g", "-4", "-c", filepath.Join(dir, "named.conf"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort(ip, fmt.Sprint(port))
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := r.LookupIPAddr(ctx, "ns."+zones[0].Name)
		cancel()
		if err == nil {
			return r
		}
		if i > 200 {
			t.Fatalf("named does not answer: %v\n%s", err, out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}
