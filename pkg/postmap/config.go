package postmap

import "postdove/pkg/postconf"

// settings are the few main.cf parameters postmap and postalias use.
type settings struct {
	defaultType   string   // default_database_type
	aliasDatabase []string // alias_database
	hostname      string   // myhostname (postalias's YP_MASTER_NAME)
}

// loadSettings reads main.cf from -c DIR, $MAIL_CONFIG or /etc/postfix.
func loadSettings(configDir string) (settings, error) {
	c, err := postconf.Load(postconf.ConfigDir(configDir))
	if err != nil {
		return settings{}, &fatal{err.Error()}
	}
	s := settings{
		defaultType:   c.Get("default_database_type"),
		aliasDatabase: c.List("alias_database"),
		hostname:      c.Get("myhostname"),
	}
	if s.defaultType == "" {
		s.defaultType = "hash"
	}
	return s, nil
}
