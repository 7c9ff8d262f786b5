// Package discard is postdove's discard(8) delivery agent: it reports
// every recipient of a request delivered, with the next hop as the text
// (the domain for a bare "discard:" in transport_maps), and delivers
// nothing.
package discard

import (
	"context"
	"time"

	"postdove/pkg/delivery"
)

// Agent is a discard(8) delivery agent.
type Agent struct {
	// Logf receives one line per recipient, e.g. maillog's Logger.Info.
	Logf func(format string, args ...any)
}

// Handle is the agent's delivery.Handler.
func (a *Agent) Handle(_ context.Context, req delivery.Request) []delivery.Result {
	began := time.Now()
	dsn, text := delivery.SplitDSN(req.Nexthop, "2.0.0")
	if dsn[0] != '2' {
		dsn = "2.0.0" // as error(8) does with a code of the wrong class
	}
	var out []delivery.Result
	for _, r := range req.Recipients {
		res := delivery.Result{Recipient: r, Final: r.Address, Status: delivery.Sent, DSN: dsn, Text: text, Relay: "none"}
		if a.Logf != nil {
			a.Logf("%s", delivery.LogLine(req, res, 0, began))
		}
		out = append(out, res)
	}
	return out
}
