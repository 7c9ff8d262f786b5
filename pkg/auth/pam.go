package auth

import "strings"

// pamDB is the pam passdb: args = [session=yes] [setcred=yes]
// [failure_show_msg=yes] [max_requests=N] [cache_key=K] [SERVICE], where
// SERVICE ("dovecot" by default) may be "%s", the protocol's name.
type pamDB struct {
	service        string
	session        bool
	setcred        bool
	failureShowMsg bool
}

func newPAM(args string) *pamDB {
	db := &pamDB{service: "dovecot"}
	for _, w := range strings.Fields(args) {
		k, v, isKV := strings.Cut(w, "=")
		if !isKV {
			db.service = w
			continue
		}
		yes, _ := parseYes(v)
		switch k {
		case "session":
			db.session = yes
		case "setcred":
			db.setcred = yes
		case "failure_show_msg":
			db.failureShowMsg = yes
		}
	}
	return db
}

// serviceFor returns the PAM service name for a request.
func (db *pamDB) serviceFor(req *Request) string {
	if db.service == "%s" || db.service == "%{service}" {
		if req.Service != "" {
			return req.Service
		}
		return "dovecot"
	}
	return db.service
}
