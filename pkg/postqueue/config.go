package postqueue

import (
	"strings"

	"postdove/pkg/postconf"
	"postdove/pkg/queue"
)

// Load reads main.cf in configDir ("" means $MAIL_CONFIG or
// /etc/postfix) and returns the queue it describes.
func Load(configDir string) (*queue.Queue, *postconf.Config, error) {
	dir := postconf.ConfigDir(configDir)
	if err := postconf.CheckTrusted(dir); err != nil {
		return nil, nil, err
	}
	c, err := postconf.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	return queue.FromConfig(c), c, nil
}

// FlushDomains is the fast_flush_domains list of c.
func FlushDomains(c *postconf.Config) []string {
	return strings.FieldsFunc(c.Get("fast_flush_domains"), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n'
	})
}
