package pickup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"postdove/pkg/cleanup"
	"postdove/pkg/postdrop"
	"postdove/pkg/queue"
)

// Pickup is the pickup service for one queue.
type Pickup struct {
	Queue   *queue.Queue
	Cleanup *cleanup.Cleanup
	Log     cleanup.Logger // *maillog.Logger with program "pickup"; nil: silent
}

func (p *Pickup) warn(format string, args ...any) {
	if p.Log != nil {
		p.Log.Warning(format, args...)
	}
}

// concurrency is how many maildrop files one scan cleans up at once: their
// fsyncs then share the file system's journal commits instead of waiting
// for one each.
const concurrency = 4

// Scan processes every file in maildrop/ once and returns how many
// messages it queued. It stops at the first temporary failure (the file
// stays in maildrop for the next scan).
func (p *Pickup) Scan() (int, error) {
	ids, err := p.Queue.List(queue.Maildrop)
	if err != nil {
		return 0, err
	}
	var (
		mu       sync.Mutex
		n        int
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan string)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				ok, err := p.one(id)
				mu.Lock()
				if ok {
					n++
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		next <- id
	}
	close(next)
	wg.Wait()
	return n, firstErr
}

func (p *Pickup) one(id string) (bool, error) {
	m, err := p.Queue.ReadEnvelope(queue.Maildrop, id)
	var env *postdrop.Envelope
	if err == nil {
		env, err = postdrop.ReadEnvelope(m)
	}
	if err != nil {
		if errors.Is(err, queue.ErrNotFound) {
			return false, nil // taken by another pickup
		}
		p.warn("maildrop/%s: %v: moved to corrupt queue", id, err)
		if merr := p.Queue.Move(id, queue.Maildrop, queue.Corrupt); merr != nil {
			return false, merr
		}
		return false, nil
	}
	f, err := p.Queue.Open(queue.Maildrop, id)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sub := &cleanup.Submission{
		Sender:     env.Sender,
		Recipients: env.Recipients,
		FullName:   env.FullName,
		UID:        env.UID,
		Extracted:  env.Extracted,
		Verify:     env.Verify,
		Arrival:    m.Arrival,
		Copy:       true, // the maildrop file goes only after the incoming one is queued
		Queued: func(newID string) {
			if p.Log != nil {
				uid := env.UID
				if env.Requeued {
					uid = os.Getuid() // the file is the mail owner's now
				}
				p.Log.Info("%s: uid=%d from=<%s>", newID, uid, env.Sender)
			}
		},
	}
	_, err = p.Cleanup.Process(sub, f.Content())
	var rej *cleanup.Reject
	if errors.As(err, &rej) {
		p.warn("maildrop/%s: uid=%d from=<%s>: message rejected: %v: removed", id, env.UID, env.Sender, rej)
		return false, p.Queue.Remove(queue.Maildrop, id)
	}
	var d *cleanup.Defer
	if errors.As(err, &d) {
		// This message waits for the next scan; the others go on.
		p.warn("maildrop/%s: %s", id, d.Text)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("maildrop/%s: %w", id, err)
	}
	return true, p.Queue.Remove(queue.Maildrop, id)
}

// Run scans maildrop/ when public/pickup is triggered and every interval
// until ctx is done. Temporary failures are logged and retried at the
// next scan.
func (p *Pickup) Run(ctx context.Context, interval time.Duration) error {
	wake, closer, err := queue.Listen(p.Queue.Dir, "pickup")
	if err != nil {
		return err
	}
	defer closer.Close()
	if interval <= 0 {
		interval = time.Minute
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := p.Scan(); err != nil {
			p.warn("%v", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-wake:
			if !ok {
				return nil
			}
		case <-tick.C:
		}
	}
}
