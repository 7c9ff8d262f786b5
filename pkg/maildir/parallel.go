package maildir

import (
	"sync"
	"sync/atomic"
)

// ioWorkers is how many goroutines read or stat a folder's files at
// once: the work is mostly waiting on system calls, so a few more than
// one overlap them without crowding small machines.
const ioWorkers = 4

// ioBatch is how many files a worker takes at a time.
const ioBatch = 256

// forEachFile calls fn for [lo, hi) ranges covering [0, n), on up to
// ioWorkers goroutines at once; each goroutine gets its own scratch
// buffer (nil until it sets it), kept across its ranges. Small n runs
// on the caller's goroutine.
func forEachFile(n int, fn func(lo, hi int, scratch *[]byte)) {
	if n <= ioBatch {
		var scratch []byte
		fn(0, n, &scratch)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < ioWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []byte
			for {
				lo := int(next.Add(ioBatch)) - ioBatch
				if lo >= n {
					return
				}
				fn(lo, min(lo+ioBatch, n), &scratch)
			}
		}()
	}
	wg.Wait()
}
