package compat

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// The restriction engine against Postfix 3.7's: every profile below is one
// smtpd service in master.cf with its -o settings, on its own port of
// 127.0.0.1, in both systems, which share one main.cf and the same access
// tables (indexed by each system's own postmap). Every case is one SMTP
// session run against both; the replies and the reject lines it logs
// must be the same.

// restrictionTables are the access tables of the profiles, in ConfigDir.
var restrictionTables = map[string]string{
	// The classic lab example: a CIDR key in a hash map never matches.
	"client":      "127.0.0.0/8 OK\n127.0.0.1 REJECT\n",
	"client.cidr": "127.0.0.0/8 OK\n127.0.0.1 REJECT\n",
	"client_net":  "127.0.0 450 4.7.3 subnet deferred\n",
	"helo.regexp": "/^bad\\./ REJECT bad helo\n/^hold\\./ HOLD\n/^ok\\./ OK\n",
	"sender": "ok@s.example OK\nrej@s.example REJECT\nrejt@s.example REJECT sender text here\n" +
		"def@s.example DEFER\ndeft@s.example DEFER try later please\n" +
		"t4@s.example 450 4.7.2 four fifty\nt5@s.example 554 5.7.9 five fifty four\n" +
		"t5n@s.example 550 no enhanced code\ndunno@s.example DUNNO\npermit@s.example PERMIT\n" +
		"hold@s.example HOLD\ns.example REJECT whole domain\nuser@ 451 4.7.0 by local part\n<> REJECT null sender\n",
	"sender.pcre": "/^rej@/ REJECT pcre says no\n/^t4@/ 421 4.7.0 pcre four\n/^ok@/ OK\n",
	"rcpt.regexp": "/^rej@/ REJECT regexp says no\n/^dunno@/ DUNNO\n/^rel@/ reject_unauth_destination\n/^t5@/ 550 5.7.8 regexp five\n",
	"rcpt":        "rej@mail.example.test REJECT\nok@elsewhere.example OK\nmail.example.test DUNNO\npostmaster@mail.example.test HOLD\n",
}

// restrictionProfiles are the smtpd services: name -> -o settings (commas
// for spaces, as master.cf needs).
var restrictionProfiles = map[string][]string{
	"default":          nil,
	"out":              {"mynetworks=10.0.0.0/8"},
	"client_reject":    {"smtpd_client_restrictions=reject"},
	"client_reject_nd": {"smtpd_client_restrictions=reject", "smtpd_delay_reject=no"},
	"client_defer":     {"smtpd_client_restrictions=defer"},
	"client_mynet_in":  {"smtpd_client_restrictions=permit_mynetworks,reject"},
	"client_mynet_out": {"smtpd_client_restrictions=permit_mynetworks,reject", "mynetworks=10.0.0.0/8"},
	"client_hash":      {"smtpd_client_restrictions=check_client_access,hash:$config_directory/client"},
	"client_cidr":      {"smtpd_client_restrictions=check_client_access,cidr:$config_directory/client.cidr,reject"},
	"client_net":       {"smtpd_client_restrictions=check_client_access,hash:$config_directory/client_net"},
	"helo_required":    {"smtpd_helo_required=yes"},
	"helo_checks": {"smtpd_helo_required=yes",
		"smtpd_helo_restrictions=reject_invalid_helo_hostname,reject_non_fqdn_helo_hostname,check_helo_access,regexp:$config_directory/helo.regexp"},
	"helo_checks_nd": {"smtpd_helo_required=yes", "smtpd_delay_reject=no",
		"smtpd_helo_restrictions=reject_invalid_helo_hostname,reject_non_fqdn_helo_hostname,check_helo_access,regexp:$config_directory/helo.regexp"},
	"sender_hash": {"smtpd_sender_restrictions=reject_non_fqdn_sender,check_sender_access,hash:$config_directory/sender"},
	"sender_hash_nd": {"smtpd_delay_reject=no",
		"smtpd_sender_restrictions=reject_non_fqdn_sender,check_sender_access,hash:$config_directory/sender"},
	"sender_pcre":      {"smtpd_sender_restrictions=check_sender_access,pcre:$config_directory/sender.pcre,reject"},
	"sender_tcp_down":  {"smtpd_sender_restrictions=check_sender_access,tcp:127.0.0.1:1"},
	"unlisted_missing": {"local_recipient_maps=hash:$config_directory/nonexistent"},
	"sender_missing":   {"smtpd_sender_restrictions=check_sender_access,hash:$config_directory/nonexistent"},
	"rcpt_checks": {"mynetworks=10.0.0.0/8", "smtpd_recipient_restrictions=reject_non_fqdn_recipient," +
		"check_recipient_access,regexp:$config_directory/rcpt.regexp,check_recipient_access,hash:$config_directory/rcpt," +
		"reject_unlisted_recipient,reject_unauth_destination"},
	"rcpt_defer_unauth": {"mynetworks=10.0.0.0/8", "smtpd_relay_restrictions=",
		"smtpd_recipient_restrictions=defer_unauth_destination"},
	"rcpt_permit_reject": {"smtpd_recipient_restrictions=permit_mynetworks,reject", "mynetworks=10.0.0.0/8"},
	"data_reject":        {"smtpd_data_restrictions=reject"},
	"data_pipelining":    {"smtpd_data_restrictions=reject_unauth_pipelining"},
	"client_pipelining":  {"smtpd_client_restrictions=reject_unauth_pipelining"},
}

// restrictionCases are the sessions: a profile and its commands.
var restrictionCases = []struct {
	name, profile string
	cmds          []string
}{
	{"relay_from_mynetworks", "default", mailTo("a@b.example", "x@elsewhere.example")},
	{"relay_denied_outside", "out", mailTo("a@b.example", "x@elsewhere.example", "root@mail.example.test", "nosuchuser@mail.example.test", "root")},
	{"client_reject", "client_reject", mailTo("a@b.example", "root@mail.example.test")},
	{"client_reject_no_delay", "client_reject_nd", mailTo("a@b.example", "root@mail.example.test")},
	{"client_defer", "client_defer", mailTo("a@b.example", "root@mail.example.test")},
	{"client_permit_mynetworks_in", "client_mynet_in", mailTo("a@b.example", "root@mail.example.test")},
	{"client_permit_mynetworks_out", "client_mynet_out", mailTo("a@b.example", "root@mail.example.test")},
	{"client_hash_cidr_key_ignored", "client_hash", mailTo("a@b.example", "root@mail.example.test")},
	{"client_cidr_first_match", "client_cidr", mailTo("a@b.example", "root@mail.example.test")},
	{"client_hash_net_prefix_4xx", "client_net", mailTo("a@b.example", "root@mail.example.test")},
	{"helo_required_mail_first", "helo_required", []string{"MAIL FROM:<a@b.example>", "HELO ok.example", "MAIL FROM:<a@b.example>", "QUIT"}},
	{"helo_invalid", "helo_checks", heloMail("HELO bad_name!")},
	{"helo_non_fqdn", "helo_checks", heloMail("EHLO localhost")},
	{"helo_literal", "helo_checks", heloMail("HELO [127.0.0.1]")},
	{"helo_regexp_reject", "helo_checks", heloMail("EHLO bad.example.com")},
	{"helo_regexp_ok", "helo_checks", heloMail("EHLO ok.example.com")},
	{"helo_regexp_hold", "helo_checks", append(heloMail("EHLO hold.example.com")[:3], "DATA", "Subject: h\r\n\r\nhold me\r\n.", "QUIT")},
	{"helo_invalid_no_delay", "helo_checks_nd", heloMail("HELO a..b")},
	{"helo_non_fqdn_no_delay", "helo_checks_nd", heloMail("EHLO localhost")},
	{"helo_missing_no_delay", "helo_checks_nd", []string{"MAIL FROM:<a@b.example>", "QUIT"}},
	{"sender_ok", "sender_hash", senders("ok@s.example")},
	{"sender_reject", "sender_hash", senders("rej@s.example", "rejt@s.example")},
	{"sender_defer", "sender_hash", senders("def@s.example", "deft@s.example")},
	{"sender_nnn_text", "sender_hash", senders("t4@s.example", "t5@s.example", "t5n@s.example")},
	{"sender_dunno_domain", "sender_hash", senders("dunno@s.example", "other@s.example")},
	{"sender_permit_action", "sender_hash", senders("permit@s.example")},
	{"sender_localpart_key", "sender_hash", senders("user@x.example")},
	{"sender_null", "sender_hash", senders("")},
	{"sender_non_fqdn", "sender_hash", senders("a@b", "a")},
	{"sender_hold", "sender_hash", append(senders("hold@s.example")[:3], "DATA", "Subject: h\r\n\r\nhold me\r\n.", "QUIT")},
	{"sender_reject_no_delay", "sender_hash_nd", senders("rej@s.example", "t4@s.example", "a@b", "ok@s.example")},
	{"sender_pcre", "sender_pcre", senders("rej@p.example", "t4@p.example", "ok@p.example", "other@p.example")},
	{"sender_table_unreadable", "sender_missing", senders("a@b.example")},
	{"sender_table_lookup_fails", "sender_tcp_down", senders("a@b.example")},
	{"local_recipient_maps_unreadable", "unlisted_missing", mailTo("a@b.example", "root@mail.example.test", "x@elsewhere.example")},
	{"rcpt_non_fqdn", "rcpt_checks", mailTo("a@b.example", "x@y", "root")},
	{"rcpt_regexp", "rcpt_checks", mailTo("a@b.example", "rej@mail.example.test", "t5@mail.example.test", "dunno@elsewhere.example", "rel@elsewhere.example")},
	{"rcpt_hash", "rcpt_checks", mailTo("a@b.example", "rej@mail.example.test", "ok@elsewhere.example", "root@mail.example.test")},
	{"rcpt_unlisted", "rcpt_checks", mailTo("a@b.example", "nosuchuser@mail.example.test", "nosuchuser@localhost", "root@mail.example.test")},
	{"rcpt_hold", "rcpt_checks", append(mailTo("a@b.example", "postmaster@mail.example.test")[:3], "DATA", "Subject: h\r\n\r\nhold me\r\n.", "QUIT")},
	{"rcpt_defer_unauth", "rcpt_defer_unauth", mailTo("a@b.example", "x@elsewhere.example", "root@mail.example.test")},
	{"rcpt_permit_mynetworks_reject", "rcpt_permit_reject", mailTo("a@b.example", "root@mail.example.test")},
	{"data_reject", "data_reject", append(mailTo("a@b.example", "root@mail.example.test")[:3], "DATA", "QUIT")},
	{"data_unauth_pipelining", "data_pipelining", append(mailTo("a@b.example", "root@mail.example.test")[:3],
		smtpdPipelined("DATA", "Subject: p\r\n\r\npipelined\r\n."), "QUIT")},
	{"data_pipelining_waits", "data_pipelining", append(mailTo("a@b.example", "root@mail.example.test")[:3], "DATA", "Subject: p\r\n\r\nwaited\r\n.", "QUIT")},
	{"helo_unauth_pipelining", "client_pipelining", []string{smtpdPipelined("HELO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>"), "QUIT"}},
	{"ehlo_pipelining_allowed", "client_pipelining", []string{"EHLO c.example", smtpdPipelined("MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>"), "QUIT"}},
}

// mailTo is EHLO, MAIL FROM sender, an RCPT TO for each recipient, QUIT.
func mailTo(sender string, rcpts ...string) []string {
	cmds := []string{"EHLO c.example", "MAIL FROM:<" + sender + ">"}
	for _, r := range rcpts {
		cmds = append(cmds, "RCPT TO:<"+r+">")
	}
	return append(cmds, "QUIT")
}

// heloMail is helo, then one mail transaction to root.
func heloMail(helo string) []string {
	return []string{helo, "MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>", "QUIT"}
}

// senders tries each sender, with RSET between, to root.
func senders(list ...string) []string {
	cmds := []string{"EHLO c.example"}
	for _, s := range list {
		cmds = append(cmds, "MAIL FROM:<"+s+">", "RCPT TO:<root@mail.example.test>", "RSET")
	}
	return append(cmds[:len(cmds)-1], "QUIT")
}

// restrictionSystem is one running system with a port per profile.
type restrictionSystem struct {
	inst  *oracle.Instance
	ports map[string]string // profile -> 127.0.0.1:port
	log   *smtpdLog
}

func startRestrictionSystem(t *testing.T, start func(testing.TB, oracle.PostfixOptions) *oracle.Instance) *restrictionSystem {
	sys := &restrictionSystem{ports: map[string]string{}}
	var names []string
	for name := range restrictionProfiles {
		names = append(names, name)
	}
	sort.Strings(names)
	var master strings.Builder
	for _, name := range names {
		addr := freePort(t)
		sys.ports[name] = addr
		master.WriteString(addr + " inet n - n - - smtpd\n")
		for _, o := range restrictionProfiles[name] {
			master.WriteString("  -o " + o + "\n")
		}
	}
	var tables []string
	for name := range restrictionTables {
		if !strings.Contains(name, ".") { // the others need no index
			tables = append(tables, "hash:"+name)
		}
	}
	sys.inst = start(t, oracle.PostfixOptions{
		MainCF: "mynetworks = 127.0.0.0/8\nsmtpd_error_sleep_time = 0\nsmtpd_soft_error_limit = 100\n" +
			"default_transport = discard\n",
		MasterCF: master.String(),
		Files:    restrictionTables,
		Postmap:  tables,
	})
	sys.log = &smtpdLog{path: sys.inst.Maillog}
	// Each probe is a session in the log: skip them.
	for _, addr := range sys.ports {
		oracle.WaitListening(t, addr)
	}
	for range sys.ports {
		sys.log.session(t)
	}
	return sys
}

// smtpdLog reads an instance's maillog one session at a time.
type smtpdLog struct {
	path string
	seen int // lines already returned
}

var smtpdLogLine = regexp.MustCompile(`postfix/smtpd\[\d+\]: (.*)$`)

// session waits until the next "disconnect from" line and returns the
// smtpd lines up to it, without time and pid, queue IDs as ID.
func (l *smtpdLog) session(t *testing.T) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(l.path)
		lines := strings.Split(string(b), "\n")
		var out []string
		for i := l.seen; i < len(lines)-1; i++ {
			m := smtpdLogLine.FindStringSubmatch(lines[i])
			if m == nil {
				continue
			}
			out = append(out, regexp.MustCompile(`\b[0-9A-F]{10,}\b`).ReplaceAllString(m[1], "ID"))
			if strings.HasPrefix(m[1], "disconnect from ") {
				l.seen = i + 1
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: no disconnect line after line %d", l.path, l.seen)
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// actions keeps the lines of smtpd's rejects and other actions
// ("NOQUEUE: reject: ...", "ID: hold: ...").
func actions(lines []string) string {
	var out []string
	for _, l := range lines {
		if smtpdAction.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

var smtpdAction = regexp.MustCompile(`^(NOQUEUE|ID): [a-z]+: `)

// TestSmtpdRestrictions runs every case against Postfix's smtpd and
// postdove's, each with the same main.cf and master.cf services, and
// compares each reply and the reject lines the session logged.
func TestSmtpdRestrictions(t *testing.T) {
	pf := startRestrictionSystem(t, oracle.StartPostfix)
	pd := startRestrictionSystem(t, oracle.StartPostdove)
	for _, c := range restrictionCases {
		t.Run(c.name, func(t *testing.T) {
			want := smtpdTranscript(t, pf.ports[c.profile], c.cmds)
			wantLog := pf.log.session(t)
			got := smtpdTranscript(t, pd.ports[c.profile], c.cmds)
			gotLog := pd.log.session(t)
			if got != want {
				t.Errorf("replies differ (profile %s %v)\npostdove:\n%s\npostfix:\n%s", c.profile, restrictionProfiles[c.profile], got, want)
			}
			if g, w := actions(gotLog), actions(wantLog); g != w {
				why := "reject lines differ"
				if strings.ReplaceAll(g, "NOQUEUE: ", "ID: ") == strings.ReplaceAll(w, "NOQUEUE: ", "ID: ") {
					why = "reject lines differ only in NOQUEUE/queue ID: Postfix opens the queue file at the first accepted RCPT"
				}
				t.Errorf("%s\npostdove:\n%s\npostfix:\n%s", why, g, w)
			}
			if testing.Verbose() {
				fmt.Printf("--- %s\n%s%s\n", c.name, want, actions(wantLog))
			}
		})
	}
}
