package local

import (
	"context"

	"postdove/pkg/delivery"
)

// Handle is the agent's delivery.Handler for private/local: it delivers
// req and gives each recipient the agent made no delivery for (a
// duplicate of one it made in this message) a result, since the queue
// manager defers a recipient without one. Like Postfix's local, that is
// done without a log line.
func (a *Agent) Handle(_ context.Context, req delivery.Request) []delivery.Result {
	res := a.Deliver(req)
	have := map[int]bool{}
	for _, r := range res {
		have[r.Index] = true
	}
	for _, r := range req.Recipients {
		if !have[r.Index] {
			res = append(res, Result{Recipient: r, Final: r.Address, Status: Sent, DSN: "2.0.0", Relay: "local", Duplicate: true})
		}
	}
	return res
}
