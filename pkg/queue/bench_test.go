package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRemoveLogsMissing is the logfile lookups every removal of a
// message without logfiles makes, with 10000 other messages' defer logs
// in the (hashed) defer queue.
func BenchmarkRemoveLogsMissing(b *testing.B) {
	q := New(b.TempDir())
	for _, d := range LogQueues {
		if err := os.Mkdir(filepath.Join(q.Dir, d), 0700); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 10000; i++ {
		id := fmt.Sprintf("%05X%06X", i%0xfffff, i)
		if err := q.mkSubdir(Defer, id); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(q.Path(Defer, id), []byte("recipient=x\n\n"), 0600); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := q.RemoveLogs("ABCDEF9999"); err != nil {
			b.Fatal(err)
		}
	}
}
