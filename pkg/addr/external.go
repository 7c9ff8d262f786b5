package addr

import "strings"

// External is the external form of internal address addr, as Postfix
// shows it in mailq and logs it: the local part quoted when RFC 5322
// requires it (specials, white space, control characters,
// leading, trailing or doubled dots), as Postfix's showq does.
func External(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	local, domain := addr, ""
	if at >= 0 {
		local, domain = addr[:at], addr[at:]
	}
	if !needsQuote(local) {
		return addr
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if local[i] == '"' || local[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String() + domain
}

func needsQuote(local string) bool {
	if local == "" {
		return false
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return true
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("()<>@,;:\\\"[]", c) >= 0 {
			return true
		}
	}
	return false
}
