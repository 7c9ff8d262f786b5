package smtp

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"postdove/pkg/postconf"
)

// Settings are the main.cf parameters smtp(8) and lmtp(8) obey. Each is
// read under the role's prefix: smtp_helo_name for smtp, lmtp_lhlo_name
// for lmtp, and so on.
type Settings struct {
	Role           string // "smtp" or "lmtp"
	MyHostname     string // myhostname
	HeloName       string // smtp_helo_name, lmtp_lhlo_name
	ConnectTimeout time.Duration
	HeloTimeout    time.Duration
	MailTimeout    time.Duration
	RcptTimeout    time.Duration
	DataInit       time.Duration // smtp_data_init_timeout
	DataXfer       time.Duration // smtp_data_xfer_timeout
	DataDone       time.Duration // smtp_data_done_timeout
	QuitTimeout    time.Duration
	RsetTimeout    time.Duration
	TLSLevel       string // smtp_tls_security_level: none, may, encrypt
	CAFile         string // smtp_tls_CAfile
	MXAddressLimit int    // smtp_mx_address_limit
	MXSessionLimit int    // smtp_mx_session_limit
	CacheOnDemand  bool   // smtp_connection_cache_on_demand
	CacheTime      time.Duration
}

// SettingsFrom reads the settings of role ("smtp" or "lmtp") through get,
// which returns a parameter's expanded value in force (postconf's
// Config.Get); nil reads Postfix's defaults.
func SettingsFrom(role string, get func(string) string) (Settings, error) {
	if get == nil {
		get = postconf.Empty(postconf.DefaultConfigDir).Get
	}
	p := role + "_"
	s := Settings{Role: role, MyHostname: get("myhostname")}
	helo := "smtp_helo_name"
	if role == "lmtp" {
		helo = "lmtp_lhlo_name"
	}
	s.HeloName = get(helo)
	if s.HeloName == "" {
		s.HeloName = s.MyHostname
	}
	var firstErr error
	dur := func(name string, def time.Duration) time.Duration {
		v := get(p + name)
		if v == "" {
			return def
		}
		d, err := postconf.ParseDuration(v, 's')
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("invalid %s%s parameter value: %q", p, name, v)
		}
		if err != nil {
			return def
		}
		return d
	}
	num := func(name string, def int) int {
		v := get(p + name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			if firstErr == nil {
				firstErr = fmt.Errorf("invalid %s%s parameter value: %q", p, name, v)
			}
			return def
		}
		return n
	}
	s.ConnectTimeout = dur("connect_timeout", 30*time.Second)
	s.HeloTimeout = dur(map[bool]string{true: "lhlo_timeout", false: "helo_timeout"}[role == "lmtp"], 300*time.Second)
	s.MailTimeout = dur("mail_timeout", 300*time.Second)
	s.RcptTimeout = dur("rcpt_timeout", 300*time.Second)
	s.DataInit = dur("data_init_timeout", 120*time.Second)
	s.DataXfer = dur("data_xfer_timeout", 180*time.Second)
	s.DataDone = dur("data_done_timeout", 600*time.Second)
	s.QuitTimeout = dur("quit_timeout", 300*time.Second)
	s.RsetTimeout = dur("rset_timeout", 20*time.Second)
	s.TLSLevel = strings.ToLower(get(p + "tls_security_level"))
	if s.TLSLevel == "" && get(p+"use_tls") == "yes" {
		s.TLSLevel = "may"
	}
	if s.TLSLevel == "" && get(p+"enforce_tls") == "yes" {
		s.TLSLevel = "encrypt"
	}
	switch s.TLSLevel {
	case "", "none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure":
	default:
		if firstErr == nil {
			firstErr = fmt.Errorf("invalid %stls_security_level value: %s", p, s.TLSLevel)
		}
	}
	s.CAFile = get(p + "tls_CAfile")
	s.MXAddressLimit = num("mx_address_limit", 5)
	s.MXSessionLimit = num("mx_session_limit", 2)
	s.CacheOnDemand = get(p+"connection_cache_on_demand") != "no"
	s.CacheTime = dur("connection_cache_time_limit", 2*time.Second)
	return s, firstErr
}
