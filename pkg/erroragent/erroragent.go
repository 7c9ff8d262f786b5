// Package erroragent is postdove's error(8) and retry delivery agent:
// every recipient of a request fails with the next hop's text (the
// "error:5.1.1 text" of transport_maps), bounced by the error service
// and deferred by the retry service, as Postfix's error(8) does when it
// runs as either.
package erroragent

import (
	"context"
	"time"

	"postdove/pkg/delivery"
)

// Agent is an error(8) delivery agent.
type Agent struct {
	// Retry makes it defer instead of bounce (master.cf's retry service).
	Retry bool
	// Logf receives one line per recipient, e.g. maillog's Logger.Info.
	Logf func(format string, args ...any)
}

// Handle is the agent's delivery.Handler.
func (a *Agent) Handle(_ context.Context, req delivery.Request) []delivery.Result {
	began := time.Now()
	st, def := delivery.Bounced, "5.0.0"
	if a.Retry {
		st, def = delivery.Deferred, "4.0.0"
	}
	dsn, text := delivery.SplitDSN(req.Nexthop, def)
	if text == "" {
		text = "Address is undeliverable"
	}
	if dsn[0] != def[0] {
		// A code of the other class gives way to the default, as in
		// Postfix; the text stays.
		dsn = def
	}
	var out []delivery.Result
	for _, r := range req.Recipients {
		res := delivery.Result{Recipient: r, Final: r.Address, Status: st, DSN: dsn, Text: text, Relay: "none"}
		if a.Logf != nil {
			a.Logf("%s", delivery.LogLine(req, res, 0, began))
		}
		out = append(out, res)
	}
	return out
}
