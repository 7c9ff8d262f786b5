package doveconf

import "strings"

var (
	globalDefaults = map[string]string{}
	// builtinServices maps a built-in service's name to its settings, by
	// path inside the service ("chroot", "inet_listener/imap/port").
	builtinServices = map[string]map[string]string{}
	serviceOrder    []string
)

func init() {
	for _, s := range globalTable {
		globalDefaults[s.name] = s.def
	}
	for _, kv := range serviceTable {
		name, path, _ := strings.Cut(kv[0], "/")
		m := builtinServices[name]
		if m == nil {
			m = map[string]string{}
			builtinServices[name] = m
			serviceOrder = append(serviceOrder, name)
		}
		m[path] = kv[1]
	}
}

// Default returns Dovecot 2.3's built-in default for a global setting.
func Default(name string) (string, bool) {
	v, ok := globalDefaults[name]
	return v, ok
}

// sectionDefaults returns the defaults of the settings inside sec; parent
// is the service a listener belongs to.
func sectionDefaults(sec, parent *Section) map[string]string {
	m := map[string]string{}
	switch sec.Kind {
	case "":
		return globalDefaults
	case "service":
		if b, ok := builtinServices[sec.Name]; ok {
			for k, v := range b {
				if !strings.Contains(k, "/") {
					m[k] = v
				}
			}
			return m
		}
	case "inet_listener", "unix_listener", "fifo_listener":
		if parent != nil {
			prefix := sec.Kind + "/" + strings.ReplaceAll(sec.Name, "/", `\s`) + "/"
			for k, v := range builtinServices[parent.Name] {
				if rest, ok := strings.CutPrefix(k, prefix); ok {
					m[rest] = v
				}
			}
			if len(m) > 0 {
				return m
			}
		}
	}
	for _, s := range sectionTable[sec.Kind] {
		m[s.name] = s.def
	}
	return m
}
