package compat

import "testing"

func TestPostaliasCompat(t *testing.T) {
	classic := "root: john\nsales: charles,john,mike\ncharles: charles@gmail.com\n"
	messy := "root: john\nSales: charles,john,\n  mike\n# c\n\"a b\": x\n|cmd: y\nnocolon\n: empty\nx:\n" +
		"  y:  \"|cmd arg\", /file, :include:/etc/inc\nroot: dup\nq\"uo\": z\n\"unterminated: x\n" +
		"sp ace: 1\nTAB\t:  2\r\nu@h: x\ne1:\n"
	tokens := "v1: a  b ,c,,d\nv2: \"Joe Q\" <joe@x.com>, (comment) bob , a.b@c.d\n" +
		"v3: |\"/usr/bin/foo -x\", \"| cmd   two\", \\\\backslash, \\quoted\n" +
		"v4: john@[1.2.3.4] ; semi, x<y>z\nv5: a:b:c\n  \"key with \\\" quote\": val\n" +
		"v6: \" padded \"\nv7:,x,\nv8: \"unterminated\nv9: (unterminated comment\nv10: <a@b\n" +
		"k1: a|\"b\"\nk2: x\"y\"\nk3: \"y\"x\nk4: \"a\"\"b\"\nk5: a (c) b (d)(e)\nk6: a . b.c\nk7: x @ y\n" +
		"k8: [d]x x[d] [d][e]\nk9: a\"b\"c d\nk10: \"a\"<b> <c>\"d\" >e\nk11: a,b;c:d.e@f<g>h[i]j\n" +
		"k12: \"\"\nk13: x\\ y a\\\"b \"q\\\\r\"\nk14: \xc3\xa9 x\nk15: |x\"y\"\nk16: a|b\"c\"\nk17: |\"b\" z\n" +
		"k18: ab| \"c\"\nk19: x\"y\"|\"z\"\nk20: /\"y\" :\"z\"\nk21: a |b\n" +
		// A backslash at the end of the line (found by FuzzParseEntry).
		"b2: x\\\nb6: x \\\nb7: \\\"\\\" \\\nb3: \"x\\\nb4: a, \\\nb5: (c\\\n"
	cases := []postmapCase{
		{"classic", map[string]string{"aliases": classic}, []postmapStep{
			{args: []string{"aliases"}},
			{args: []string{"-q", "sales", "aliases"}},
			{args: []string{"-q", "ROOT", "aliases"}},
			{args: []string{"-q", "@", "aliases"}},
			{args: []string{"-q", "nobody", "aliases"}},
			{args: []string{"-s", "aliases"}, sort: true},
			{args: []string{"-q", "-", "aliases"}, stdin: "root\nsales\nnone\n"},
			{args: []string{"-d", "root", "aliases"}},
			{args: []string{"-q", "root", "aliases"}},
		}},
		{"messy", map[string]string{"aliases": messy}, []postmapStep{
			{args: []string{"aliases"}},
			{args: []string{"-s", "aliases"}, sort: true},
			{args: []string{"-f", "aliases"}},
			{args: []string{"-s", "aliases"}, sort: true},
		}},
		{"tokens", map[string]string{"aliases": tokens}, []postmapStep{
			{args: []string{"hash:aliases"}},
			{args: []string{"-s", "hash:aliases"}, sort: true},
		}},
		{"errors", map[string]string{"d/": ""}, postmapSteps(
			[]string{},
			[]string{"missing"},
			[]string{"-q", "x", "missing"},
			[]string{"-z", "x"},
			[]string{"-s", "unix:passwd.byname"},
			[]string{"-q", "x", "static:foo"},
		)},
	}
	postmapRunCases(t, "postalias", cases)
}
