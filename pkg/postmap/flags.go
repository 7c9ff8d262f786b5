package postmap

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Flags are the command-line options shared by postmap and postalias.
type Flags struct {
	ConfigDir    string // -c
	Query        string // -q
	HasQuery     bool
	Delete       string // -d
	HasDelete    bool
	NoFold       bool // -f: keep keys' case
	Incremental  bool // -i: add entries from stdin
	Show         bool // -s: list every entry
	NoDupWarn    bool // -w: keep the first of duplicates silently
	Replace      bool // -r: the last of duplicates wins, silently
	Nul          bool // -N: include the terminating NUL in keys and values
	NoNul        bool // -n: do not
	KeepOwner    bool // -o: do not run as the source file's owner
	DefaultPerms bool // -p: new files get mode 0644, not the source's
	Verbose      int  // -v
	Maps         []string
}

// usage is the synopsis each program prints on a usage error.
func usage(prog string) string {
	if prog == "postalias" {
		return "usage: postalias [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file..."
	}
	return "usage: postmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file..."
}

// FlagSet returns the pflag set for prog ("postmap" or "postalias"),
// storing into f. Flags the original accepts but postdove has no use for
// (-b -F -h -m -u -U) are accepted and ignored.
func FlagSet(prog string, f *Flags) *pflag.FlagSet {
	fs := pflag.NewFlagSet(prog, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVarP(&f.ConfigDir, "config", "c", "", "")
	fs.StringVarP(&f.Query, "query", "q", "", "")
	fs.StringVarP(&f.Delete, "delete", "d", "", "")
	fs.BoolVarP(&f.NoFold, "fold", "f", false, "")
	fs.BoolVarP(&f.Incremental, "incremental", "i", false, "")
	fs.BoolVarP(&f.Show, "show", "s", false, "")
	fs.BoolVarP(&f.NoDupWarn, "nowarn", "w", false, "")
	fs.BoolVarP(&f.Replace, "replace", "r", false, "")
	fs.BoolVarP(&f.Nul, "nul", "N", false, "")
	fs.BoolVarP(&f.NoNul, "nonul", "n", false, "")
	fs.BoolVarP(&f.KeepOwner, "owner", "o", false, "")
	fs.BoolVarP(&f.DefaultPerms, "perms", "p", false, "")
	fs.CountVarP(&f.Verbose, "verbose", "v", "")
	ignored := "u"
	if prog == "postmap" {
		ignored = "bFhmuU"
	}
	for _, c := range ignored {
		fs.BoolP("ignored-"+string(c), string(c), false, "")
	}
	return fs
}

// Parse parses args into f; on a usage error it prints getopt's and
// Postfix's messages to stderr and returns false (exit status 1).
func Parse(prog string, fs *pflag.FlagSet, f *Flags, args []string, stderr io.Writer) bool {
	if err := fs.Parse(args); err != nil {
		msg := err.Error()
		var c string
		if i := strings.Index(msg, "'"); i >= 0 && i+2 < len(msg) {
			c = msg[i+1 : i+2]
		}
		switch {
		case strings.Contains(msg, "needs an argument"):
			fmt.Fprintf(stderr, "%s: option requires an argument -- '%s'\n", prog, c)
		case c != "":
			fmt.Fprintf(stderr, "%s: invalid option -- '%s'\n", prog, c)
		default:
			fmt.Fprintf(stderr, "%s: unrecognized option '%s'\n", prog, strings.TrimPrefix(msg, "unknown flag: "))
		}
		fmt.Fprintf(stderr, "%s: fatal: %s\n", prog, usage(prog))
		return false
	}
	f.HasQuery = fs.Changed("query")
	f.HasDelete = fs.Changed("delete")
	f.Maps = fs.Args()
	return true
}

// Main is the whole postmap or postalias command (prog names which):
// parse the flags, run, and return the exit status.
func Main(prog string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var f Flags
	if !Parse(prog, FlagSet(prog, &f), &f, args, stderr) {
		return 1
	}
	return Run(prog, f, stdin, stdout, stderr)
}
