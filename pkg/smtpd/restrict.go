package smtpd

import (
	"fmt"
	"net"
	"strings"

	"postdove/pkg/addr"
)

// result is a restriction's decision: nil goes on, permit ends the list,
// text is a reject or defer reply.
type result struct {
	permit bool
	text   string
}

var permitted = &result{permit: true}

// checkRecipient runs, with smtpd_delay_reject, the client, helo and
// sender restrictions and then the relay and recipient restrictions for
// recipient rcpt; nil accepts it.
func (ss *session) checkRecipient(rcpt string) *result {
	for _, list := range []string{"smtpd_client_restrictions", "smtpd_helo_restrictions",
		"smtpd_sender_restrictions", "smtpd_relay_restrictions", "smtpd_recipient_restrictions"} {
		if r := ss.restrict(list, rcpt); r != nil && !r.permit {
			return r
		}
	}
	return nil
}

// restrict evaluates one restriction list.
func (ss *session) restrict(list, rcpt string) *result {
	for _, name := range ss.s.cfg.List(list) {
		if r := ss.restriction(name, rcpt); r != nil {
			return r
		}
	}
	return nil
}

func (ss *session) restriction(name, rcpt string) *result {
	sender := ""
	if ss.sender != nil {
		sender = *ss.sender
	}
	switch strings.ToLower(name) {
	case "permit":
		return permitted
	case "reject":
		return ss.rejectText(554, "5.7.1", "Access denied", rcpt)
	case "defer":
		return ss.rejectText(450, "4.7.1", "Access denied", rcpt)
	case "permit_mynetworks":
		if ip := net.ParseIP(ss.ip); ip != nil && ss.s.inMynetworks(ip) {
			return permitted
		}
	case "permit_sasl_authenticated", "reject_unauth_pipelining":
		// No SASL yet; pipelining is checked at DATA only.
	case "reject_unauth_destination", "defer_unauth_destination":
		if !ss.authDestination(rcpt) {
			if name == "defer_unauth_destination" {
				return &result{text: fmt.Sprintf("454 4.7.1 <%s>: Relay access denied", rcpt)}
			}
			return &result{text: fmt.Sprintf("554 5.7.1 <%s>: Relay access denied", rcpt)}
		}
	case "permit_auth_destination":
		if ss.authDestination(rcpt) {
			return permitted
		}
	case "reject_non_fqdn_sender":
		if sender != "" && !fqdn(addr.Domain(sender)) {
			return &result{text: fmt.Sprintf("504 5.5.2 <%s>: Sender address rejected: need fully-qualified address", sender)}
		}
	case "reject_non_fqdn_recipient":
		if !fqdn(addr.Domain(rcpt)) {
			return &result{text: fmt.Sprintf("504 5.5.2 <%s>: Recipient address rejected: need fully-qualified address", rcpt)}
		}
	case "reject_non_fqdn_helo_hostname":
		if ss.helo != "" && !fqdn(ss.helo) && !isLiteral(ss.helo) {
			return &result{text: fmt.Sprintf("504 5.5.2 <%s>: Helo command rejected: need fully-qualified hostname", ss.helo)}
		}
	case "reject_invalid_helo_hostname":
		if ss.helo != "" && !validHostname(ss.helo) && !isLiteral(ss.helo) {
			return &result{text: fmt.Sprintf("501 5.5.2 <%s>: Helo command rejected: Invalid name", ss.helo)}
		}
	default:
		ss.s.log.Warning("unknown smtpd restriction: \"%s\"", name)
		return &result{text: "451 4.3.5 Server configuration error"}
	}
	return nil
}

// rejectText is the reply of a plain reject or defer in the recipient
// stage.
func (ss *session) rejectText(code int, dsn, why, rcpt string) *result {
	return &result{text: fmt.Sprintf("%d %s <%s>: Recipient address rejected: %s", code, dsn, rcpt, why)}
}

// authDestination reports whether rcpt is a destination this server
// accepts mail for from anyone: a local, virtual or relay_domains domain,
// with no routing left in the local part (so no percent hack, bang path
// or quoted "user@elsewhere" relays through it).
func (ss *session) authDestination(rcpt string) bool {
	local, domain := addr.Split(rcpt)
	if domain == "" {
		return true // an unqualified address is local
	}
	if strings.ContainsAny(addr.Unquote(local), "@%!") {
		return false
	}
	class, _, err := ss.s.resolver.ResolveErr(strings.ToLower(rcpt))
	if err != nil {
		return false
	}
	return class != addr.ClassDefault
}

func fqdn(d string) bool {
	return isLiteral(d) || (strings.Contains(d, ".") && !strings.HasSuffix(d, "."))
}

func isLiteral(h string) bool { return strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") }

func validHostname(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
