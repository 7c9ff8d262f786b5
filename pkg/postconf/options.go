package postconf

import "strings"

// optionOrder is the order postconf names its flags in when it complains
// about a combination.
const optionOrder = "aAbcCdefFhHlmMnopPtTvxX#"

// exclusiveOptions are flag sets of which at most one may be given; they
// are checked in this order.
var exclusiveOptions = []string{"deX#n", "eX#f", "eX#h", "eX#H", "eX#x", "hH", "lmFMP"}

// masterOnlyOptions are, for -M, -F, -P, -l and -m, the flags that make
// no sense with them.
var masterOnlyOptions = map[byte]string{'M': "dnh", 'F': "dn", 'P': "dn", 'l': "dnhxX#e", 'm': "dnhxX#e"}

// given is the set of flags o holds, as letters.
func (o Options) given() string {
	var b strings.Builder
	for _, f := range []struct {
		set  bool
		name byte
	}{
		{o.Defaults, 'd'}, {o.Edit, 'e'}, {o.Fold, 'f'}, {o.Fields, 'F'}, {o.NoNames, 'h'},
		{o.NoValues, 'H'}, {o.LockTypes, 'l'}, {o.MapTypes, 'm'}, {o.Master, 'M'},
		{o.NonDefault, 'n'}, {o.MasterParam, 'P'}, {o.Expand, 'x'}, {o.Exclude, 'X'}, {o.Comment, '#'},
	} {
		if f.set {
			b.WriteByte(f.name)
		}
	}
	return b.String()
}

// checkOptions refuses flag combinations as postconf does: "specify one
// of -d -n", "with option -M, do not specify -n".
func checkOptions(o Options) error {
	given := o.given()
	for _, set := range exclusiveOptions {
		var names []string
		for i := 0; i < len(optionOrder); i++ {
			c := optionOrder[i]
			if strings.IndexByte(set, c) >= 0 && strings.IndexByte(given, c) >= 0 {
				names = append(names, "-"+string(c))
			}
		}
		if len(names) > 1 {
			return fatalf("specify one of %s", strings.Join(names, " "))
		}
	}
	for i := 0; i < len(optionOrder); i++ {
		mode := optionOrder[i]
		bad, ok := masterOnlyOptions[mode]
		if !ok || strings.IndexByte(given, mode) < 0 {
			continue
		}
		for j := 0; j < len(optionOrder); j++ {
			c := optionOrder[j]
			if strings.IndexByte(bad, c) >= 0 && strings.IndexByte(given, c) >= 0 {
				return fatalf("with option -%c, do not specify -%c", mode, c)
			}
		}
	}
	return nil
}
