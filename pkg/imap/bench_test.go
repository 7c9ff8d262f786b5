package imap

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

// BenchmarkFetchFlagsEnvelope: one client's UID FETCH 1:* (FLAGS
// ENVELOPE) of a 2,000-message INBOX, as a client opening it does.
func BenchmarkFetchFlagsEnvelope(b *testing.B) {
	r := newRig(b)
	r.deliverN(2000)
	c := r.client(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
		if err != nil || len(msgs) != 2000 {
			b.Fatal(len(msgs), err)
		}
	}
}

// BenchmarkSelect: SELECT and UNSELECT of the same INBOX.
func BenchmarkSelect(b *testing.B) {
	r := newRig(b)
	r.deliverN(2000)
	c := r.client(nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		if err := c.Unselect().Wait(); err != nil {
			b.Fatal(err)
		}
	}
}
