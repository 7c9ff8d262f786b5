package local

import (
	"strings"

	"postdove/pkg/aliases"
)

// aliasTargets parses an alias value with aliases.ParseTargets, dropping
// angle brackets around addresses.
func aliasTargets(value string) []aliases.Target {
	ts := aliases.ParseTargets(value)
	out := ts[:0]
	for _, t := range ts {
		if t.Kind == aliases.Address {
			t.Value = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(t.Value, "<"), ">"))
			if t.Value == "" {
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// fileTargets parses a ~/.forward or :include: file: each line is a list
// of targets; empty lines and lines starting with # are skipped.
func fileTargets(data string) []aliases.Target {
	var out []aliases.Target
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, aliasTargets(line)...)
	}
	return out
}
