package smtpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"postdove/pkg/addr"
	"postdove/pkg/maps"
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
// recipient rcpt; nil accepts it. Without smtpd_delay_reject the first
// three were applied at connect, HELO/EHLO and MAIL already.
func (ss *session) checkRecipient(rcpt string) *result {
	if ss.s.standAlone {
		return nil // sendmail -bs: the local user's submission
	}
	ss.deferIfPermit = ss.senderDefer
	if ss.s.delayReject {
		ss.deferIfPermit = nil
		for _, list := range []string{"smtpd_client_restrictions", "smtpd_helo_restrictions"} {
			if r := ss.restrict(list, rcpt); r != nil && !r.permit {
				return r
			}
		}
		if r := ss.checkSender(rcpt); r != nil {
			return r
		}
	}
	for _, list := range []string{"smtpd_relay_restrictions", "smtpd_recipient_restrictions"} {
		if r := ss.restrict(list, rcpt); r != nil && !r.permit {
			return r
		}
	}
	if ss.s.cfg.Bool("smtpd_reject_unlisted_recipient") {
		if r := ss.unlisted(rcpt, "Recipient address", "1.1"); r != nil {
			return r
		}
	}
	// A temporary DNS failure defers what would otherwise be accepted
	// (unknown_address_tempfail_action = defer_if_permit).
	return ss.deferIfPermit
}

// checkSender is smtpd_sender_restrictions and then, as Postfix does at
// the end of the sender stage, smtpd_reject_unlisted_sender; rcpt is the
// recipient at RCPT (smtpd_delay_reject), "" at MAIL.
func (ss *session) checkSender(rcpt string) *result {
	if r := ss.restrict("smtpd_sender_restrictions", rcpt); r != nil && !r.permit {
		return r
	}
	if ss.s.cfg.Bool("smtpd_reject_unlisted_sender") && ss.senderAddr() != "" {
		return ss.unlisted(ss.senderAddr(), "Sender address", "1.0")
	}
	return nil
}

// rejectNow is smtpd_delay_reject = no: the restrictions of one stage
// (connect, HELO/EHLO or MAIL) applied at its command. A reject is
// logged for the command and answered; its reply is returned, "" when
// the command may go on.
func (ss *session) rejectNow(check func() *result) string {
	if ss.s.delayReject || ss.s.standAlone {
		return ""
	}
	ss.deferIfPermit = nil
	r := check()
	if r == nil || r.permit {
		return ""
	}
	ss.logReject(ss.queueID(), ss.where, r.text, "")
	ss.fail("%s", r.text)
	return r.text
}

// listCheck is the check of restriction list alone, for rejectNow.
func (ss *session) listCheck(list string) func() *result {
	return func() *result { return ss.restrict(list, "") }
}

// unlisted rejects an address (the recipient, or with
// reject_unlisted_sender the sender) in a local domain that no table of
// local_recipient_maps knows; dsn is the detail of its status code.
func (ss *session) unlisted(address, what, dsn string) *result {
	local, domain := addr.Split(strings.ToLower(address))
	if domain != "" && !ss.s.resolver.IsLocalDomain(domain) {
		return nil
	}
	specs := ss.s.cfg.List("local_recipient_maps")
	if len(specs) == 0 {
		return nil
	}
	user := addr.Unquote(local)
	if d := ss.s.cfg.Get("recipient_delimiter"); d != "" {
		if i := strings.IndexAny(user, d); i > 0 {
			user = user[:i]
		}
	}
	for _, spec := range specs {
		keys := []string{user}
		if domain != "" {
			keys = []string{addr.Unquote(local) + "@" + domain, user}
		}
		for _, k := range keys {
			_, found, err := ss.s.tables.Lookup(spec, k)
			if err != nil {
				return &result{text: fmt.Sprintf("451 4.3.0 <%s>: Temporary lookup failure", address)}
			}
			if found {
				return nil
			}
		}
	}
	return ss.coded(ss.s.cfg.Int("unknown_local_recipient_reject_code"), dsn,
		fmt.Sprintf("<%s>: %s rejected: User unknown in local recipient table", address, what))
}

// coded is a reject or defer with code, its enhanced status class
// following the code's.
func (ss *session) coded(code int, detail, text string) *result {
	if code < 400 || code > 599 {
		code = 450
	}
	return &result{text: fmt.Sprintf("%d %c.%s %s", code, '0'+code/100, detail, text)}
}

// unknownDomain is reject_unknown_sender_domain and
// reject_unknown_recipient_domain: the domain of address (not one of
// ours) has no MX, A or AAAA record in the DNS.
func (ss *session) unknownDomain(address, what, detail string) *result {
	domain := strings.ToLower(addr.Domain(address))
	if domain == "" || isLiteral(domain) {
		return nil
	}
	if class, _, err := ss.s.resolver.ResolveErr(strings.ToLower(address)); err == nil &&
		(class == addr.ClassLocal || class == addr.ClassVirtual || class == addr.ClassVirtualAlias) {
		return nil
	}
	r := ss.s.dns()
	ctx, cancel := context.WithTimeout(ss.ctx, 30*time.Second)
	defer cancel()
	mx, err := r.LookupMX(ctx, domain)
	if err == nil && len(mx) == 1 && (mx[0].Host == "." || mx[0].Host == "") {
		code, dsn := 550, "7.27"
		if what != "Sender address" {
			code, dsn = 556, "1.10"
		}
		return ss.coded(code, dsn, fmt.Sprintf("<%s>: %s rejected: Domain %s does not accept mail (nullMX)", address, what, domain))
	}
	if err == nil && len(mx) > 0 {
		return nil
	}
	temp := !isNotFound(err)
	if !temp {
		_, err = r.LookupIPAddr(ctx, domain)
		if err == nil {
			return nil
		}
		temp = !isNotFound(err)
	}
	text := fmt.Sprintf("<%s>: %s rejected: Domain not found", address, what)
	if !temp {
		return ss.coded(ss.s.cfg.Int("unknown_address_reject_code"), detail, text)
	}
	deferred := ss.coded(450, detail, text)
	if ss.s.cfg.Get("unknown_address_tempfail_action") == "defer" {
		return deferred
	}
	if ss.deferIfPermit == nil {
		ss.deferIfPermit = deferred
	}
	return nil
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// restrict evaluates one restriction list.
func (ss *session) restrict(list, rcpt string) *result {
	if ss.s.standAlone {
		return nil
	}
	return ss.restrictions(list, ss.s.cfg.List(list), rcpt)
}

func (ss *session) restrictions(list string, names []string, rcpt string) *result {
	for i := 0; i < len(names); i++ {
		name := strings.ToLower(names[i])
		if strings.Contains(name, ":") {
			// A bare type:table is the list's own access check:
			// smtpd_client_restrictions = hash:/etc/postfix/access.
			acl := defaultACL[list]
			if acl == "" {
				// Only smtpd_data_restrictions has none.
				ss.s.log.Warning("specify one of (check_client_access, check_reverse_client_hostname_access, check_helo_access, check_sender_access, check_recipient_access, check_etrn_access) before Data command restriction \"%s\"", names[i])
				return &result{text: "451 4.3.5 Server configuration error"}
			}
			if r := ss.checkAccess(list, acl, names[i], rcpt); r != nil {
				return r
			}
			continue
		}
		if strings.HasPrefix(name, "check_") && strings.HasSuffix(name, "_access") {
			if i+1 >= len(names) {
				ss.s.log.Warning("restriction %s requires table argument", name)
				return &result{text: "451 4.3.5 Server configuration error"}
			}
			i++
			if r := ss.checkAccess(list, name, names[i], rcpt); r != nil {
				return r
			}
			continue
		}
		if r := ss.restriction(list, name, rcpt); r != nil {
			return r
		}
	}
	return nil
}

// defaultACL is the access check a bare type:table stands for in each
// restriction list, as in Postfix; smtpd_data_restrictions has none.
var defaultACL = map[string]string{
	"smtpd_client_restrictions":    "check_client_access",
	"smtpd_helo_restrictions":      "check_helo_access",
	"smtpd_sender_restrictions":    "check_sender_access",
	"smtpd_relay_restrictions":     "check_recipient_access",
	"smtpd_recipient_restrictions": "check_recipient_access",
}

// subject is the "<what>: X rejected" start of a reply in list.
func (ss *session) subject(list, rcpt string) string {
	return ss.what(list, rcpt) + " rejected"
}

// what is "<what>: X" that a restriction of list is about.
func (ss *session) what(list, rcpt string) string {
	switch list {
	case "smtpd_client_restrictions":
		return "<" + ss.client + ">: Client host"
	case "smtpd_helo_restrictions":
		return "<" + ss.helo + ">: Helo command"
	case "smtpd_sender_restrictions":
		return "<" + ss.senderAddr() + ">: Sender address"
	case "smtpd_data_restrictions":
		return "<DATA>: Data command"
	}
	return "<" + rcpt + ">: Recipient address"
}

func (ss *session) senderAddr() string {
	if ss.sender == nil {
		return ""
	}
	return *ss.sender
}

// checkAccess is check_{client,helo,sender,recipient}_access with table
// spec.
func (ss *session) checkAccess(list, name, spec, rcpt string) *result {
	var keys []string
	switch name {
	case "check_client_access":
		keys = maps.ClientKeys(ss.name, ss.ip, true)
	case "check_helo_access":
		if ss.helo == "" {
			return nil
		}
		keys = []string{strings.ToLower(ss.helo)}
	case "check_sender_access":
		if ss.sender == nil {
			return nil
		}
		keys = maps.AddressKeys(strings.ToLower(*ss.sender), "", true)
		if *ss.sender == "" {
			keys = []string{"<>"}
		}
	case "check_recipient_access":
		if rcpt == "" {
			return nil
		}
		keys = maps.AddressKeys(strings.ToLower(rcpt), "", true)
	default:
		ss.s.log.Warning("unknown smtpd restriction: \"%s\"", name)
		return &result{text: "451 4.3.5 Server configuration error"}
	}
	switch {
	case strings.HasPrefix(spec, "cidr:"):
		keys = []string{ss.ip}
		if name != "check_client_access" {
			return nil
		}
	case strings.HasPrefix(spec, "regexp:"), strings.HasPrefix(spec, "pcre:"):
		keys = keys[:1]
	}
	for _, k := range keys {
		v, found, err := ss.s.tables.Lookup(spec, k)
		if err != nil {
			ss.s.log.Warning("%s lookup error for \"%s\"", spec, k)
			return &result{text: fmt.Sprintf("451 4.3.5 %s: Server configuration error", ss.subject(list, rcpt))}
		}
		if !found {
			continue
		}
		return ss.accessAction(list, maps.ParseAction(v), rcpt)
	}
	return nil
}

// accessAction turns an access(5) result into a decision.
func (ss *session) accessAction(list string, a maps.Action, rcpt string) *result {
	text := func(def string) string {
		if a.Text != "" {
			return a.Text
		}
		return def
	}
	switch a.Kind {
	case "OK", "RELAY":
		return permitted
	case "REJECT":
		return ss.coded(ss.s.cfg.Int("access_map_reject_code"), "7.1", ss.subject(list, rcpt)+": "+text("Access denied"))
	case "DEFER":
		return ss.coded(ss.s.cfg.Int("access_map_defer_code"), "7.1", ss.subject(list, rcpt)+": "+text("Access denied"))
	case "NNN":
		dsn := fmt.Sprintf("%c.7.1", '0'+a.Code/100)
		t := a.Text
		if f, rest, _ := strings.Cut(t, " "); isDSN(f) && f[0] == dsn[0] {
			dsn, t = f, rest
		}
		if t == "" {
			t = "Access denied"
		}
		return &result{text: fmt.Sprintf("%d %s %s: %s", a.Code, dsn, ss.subject(list, rcpt), t)}
	case "HOLD":
		// The message goes to the hold queue if accepted; the
		// restrictions go on.
		ss.hold = true
		ss.logAction("hold", ss.what(list, rcpt)+" "+text("triggers HOLD action"), rcpt)
		return nil
	case "RESTRICTION":
		return ss.restrictions(list, strings.FieldsFunc(a.Text, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }), rcpt)
	}
	return nil // DUNNO and the actions smtpd does not take yet
}

func isDSN(s string) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || (p[0] != "4" && p[0] != "5") {
		return false
	}
	for _, x := range p[1:] {
		if x == "" || len(x) > 3 || strings.Trim(x, "0123456789") != "" {
			return false
		}
	}
	return true
}

// recipientRestrictions are about the recipient: they do nothing at a
// stage that has none (connect, HELO, MAIL, DATA with several
// recipients), as in Postfix.
var recipientRestrictions = map[string]bool{
	"reject_unknown_recipient_domain": true, "reject_unlisted_recipient": true,
	"reject_unauth_destination": true, "defer_unauth_destination": true,
	"permit_auth_destination": true, "reject_non_fqdn_recipient": true,
}

func (ss *session) restriction(list, name, rcpt string) *result {
	sender := ss.senderAddr()
	if rcpt == "" && recipientRestrictions[name] {
		return nil
	}
	switch name {
	case "permit":
		return permitted
	case "reject":
		return ss.coded(ss.s.cfg.Int("reject_code"), "7.1", ss.subject(list, rcpt)+": Access denied")
	case "defer":
		return ss.coded(ss.s.cfg.Int("defer_code"), "3.2", ss.subject(list, rcpt)+": Try again later")
	case "permit_mynetworks":
		if ip := net.ParseIP(ss.ip); ip != nil && ss.s.inMynetworks(ip) {
			return permitted
		}
	case "reject_unknown_sender_domain":
		if sender != "" {
			return ss.unknownDomain(sender, "Sender address", "1.8")
		}
	case "reject_unknown_recipient_domain":
		return ss.unknownDomain(rcpt, "Recipient address", "1.2")
	case "reject_unlisted_sender":
		if sender != "" {
			return ss.unlisted(sender, "Sender address", "1.0")
		}
	case "reject_unlisted_recipient":
		return ss.unlisted(rcpt, "Recipient address", "1.1")
	case "permit_sasl_authenticated":
		// No SASL yet.
	case "reject_unauth_pipelining":
		// The client sent ahead where it may not, at any point of the
		// session (checkPipelining).
		if ss.illPipelining {
			return &result{text: fmt.Sprintf("503 5.5.0 %s: Improper use of SMTP command pipelining", ss.subject(list, rcpt))}
		}
	case "reject_unauth_destination", "defer_unauth_destination":
		if !ss.authDestination(rcpt) {
			// The reply shows the address unquoted, as Postfix's does.
			shown := addr.Unquote(rcpt)
			if name == "defer_unauth_destination" {
				return &result{text: fmt.Sprintf("454 4.7.1 <%s>: Relay access denied", shown)}
			}
			return &result{text: fmt.Sprintf("554 5.7.1 <%s>: Relay access denied", shown)}
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

// authDestination reports whether rcpt is a destination this server
// accepts mail for from anyone: a local, virtual or relay_domains domain,
// with no routing left in the local part (so no percent hack, bang path
// or quoted "user@elsewhere" relays through it).
func (ss *session) authDestination(rcpt string) bool {
	local, domain := addr.Split(rcpt)
	if domain == "" {
		// An unqualified address is local once qualified, unless the
		// rewriting finds a destination in it: user%elsewhere and
		// elsewhere!user are remote, as for Postfix.
		rcpt = ss.s.rewriter.Canonicalize(rcpt)
		if local, domain = addr.Split(rcpt); domain == "" {
			return true
		}
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
