package postconf

import (
	"fmt"
	"os"
	"path/filepath"
)

// CheckTrusted guards the set-gid programs (postdrop, postqueue): when the
// process runs with privileges its real user does not have, a configuration
// directory other than the default (from -c or $MAIL_CONFIG) is accepted
// only if the default main.cf lists it in alternate_config_directories or
// multi_instance_directories, as Postfix requires. Otherwise any user
// could point the program at a main.cf of their own.
func CheckTrusted(dir string) error {
	if !privileged() || filepath.Clean(dir) == DefaultConfigDir {
		return nil
	}
	def, err := Load(DefaultConfigDir)
	if err == nil {
		for _, name := range []string{"alternate_config_directories", "multi_instance_directories"} {
			for _, d := range def.List(name) {
				if filepath.Clean(d) == filepath.Clean(dir) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("unauthorized configuration directory name: %s", dir)
}

// privileged reports whether the process has set-uid or set-gid
// privileges beyond its real user's; root itself is trusted.
func privileged() bool {
	if os.Getuid() == 0 {
		return false
	}
	return os.Geteuid() != os.Getuid() || os.Getegid() != os.Getgid()
}
