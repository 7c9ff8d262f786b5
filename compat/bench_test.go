package compat

// Benchmarks of postdove's postmap against Debian's (make bench): building
// a 1,000,000-line hash table, and 1,000,000 lookups through
// "postmap -q - hash:FILE". ns/op is postdove's time; postfix_ns is the
// oracle's in the same run, and ratio_vs_postfix = postdove / postfix
// (below 1 is faster).

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"postdove/compat/oracle"
)

const benchLines = 1000000

// benchWriteTable writes a table source of n lines and a file with every
// key in a scrambled order (for -q -).
func benchWriteTable(b *testing.B, dir string, n int) (table, keys string) {
	b.Helper()
	table, keys = filepath.Join(dir, "table"), filepath.Join(dir, "keys")
	tf, err := os.Create(table)
	if err != nil {
		b.Fatal(err)
	}
	kf, err := os.Create(keys)
	if err != nil {
		b.Fatal(err)
	}
	tw, kw := bufio.NewWriter(tf), bufio.NewWriter(kf)
	for i := 0; i < n; i++ {
		fmt.Fprintf(tw, "user%07d@example%d.com\trelay:[mx%d.example.net]:25\n", i, i%97, i%13)
		j := (i * 7919) % n // 7919 is prime and does not divide n: a permutation
		fmt.Fprintf(kw, "User%07d@Example%d.com\n", j, j%97)
	}
	for _, w := range []*bufio.Writer{tw, kw} {
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	tf.Close()
	kf.Close()
	return table, keys
}

// benchTwins prepares one folder for the oracle and one for postdove, each
// with a main.cf and the same table.
func benchTwins(b *testing.B) (o *oracle.Oracle, ours, odir, ndir string) {
	b.Helper()
	o = oracle.Get(b)
	ours = oracle.Postdove(b, "postmap")
	root := b.TempDir()
	odir, ndir = filepath.Join(root, "oracle"), filepath.Join(root, "postdove")
	for _, d := range []string{odir, ndir} {
		if err := os.MkdirAll(d, 0755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "main.cf"), []byte(o.DynamicMapsConfig()), 0644); err != nil {
			b.Fatal(err)
		}
	}
	benchWriteTable(b, odir, benchLines)
	benchWriteTable(b, ndir, benchLines)
	return
}

// benchRun runs one command to completion, stdout discarded, and returns
// its wall time.
func benchRun(b *testing.B, cmd *exec.Cmd, stdin string) time.Duration {
	b.Helper()
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v (%d bytes out)", cmd.Args, err, len(out))
	}
	return d
}

func benchCommands(o *oracle.Oracle, ours, odir, ndir string, args ...string) (oc, nc *exec.Cmd) {
	oc = o.Command("postmap", append([]string{"-c", odir}, args...)...)
	oc.Dir = odir
	nc = exec.Command(ours, append([]string{"-c", ndir}, args...)...)
	nc.Dir = ndir
	return
}

func benchReport(b *testing.B, ours, theirs time.Duration) {
	b.ReportMetric(float64(theirs.Nanoseconds())/float64(b.N), "postfix_ns/op")
	b.ReportMetric(float64(ours)/float64(theirs), "ratio_vs_postfix")
}

// BenchmarkPostmapBuild1M: postmap hash:FILE on 1,000,000 lines.
func BenchmarkPostmapBuild1M(b *testing.B) {
	o, ours, odir, ndir := benchTwins(b)
	var tOurs, tTheirs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		oc, nc := benchCommands(o, ours, odir, ndir, "hash:table")
		tTheirs += benchRun(b, oc, "")
		b.StartTimer()
		tOurs += benchRun(b, nc, "")
	}
	benchReport(b, tOurs, tTheirs)
}

// BenchmarkPostmapQuery1M: 1,000,000 keys through postmap -q - hash:FILE.
func BenchmarkPostmapQuery1M(b *testing.B) {
	o, ours, odir, ndir := benchTwins(b)
	oc, nc := benchCommands(o, ours, odir, ndir, "hash:table")
	benchRun(b, oc, "")
	benchRun(b, nc, "")
	var tOurs, tTheirs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		oc, nc := benchCommands(o, ours, odir, ndir, "-q", "-", "hash:table")
		tTheirs += benchRun(b, oc, filepath.Join(odir, "keys"))
		b.StartTimer()
		tOurs += benchRun(b, nc, filepath.Join(ndir, "keys"))
	}
	benchReport(b, tOurs, tTheirs)
}
