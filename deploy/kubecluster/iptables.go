// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"errors"
	"strings"
)

// ruleArgs splits a rule as `iptables -S` prints it into the arguments
// that name it again (for -D): words separated by blanks, where a quoted
// word keeps its blanks ("kube-router netpol - 4IA2OSFRMVNDXBVV", a
// comment) and a backslash inside quotes escapes the next character.
// Splitting at every blank would make -D name a rule that does not exist.
func ruleArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quoted && r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (r == ' ' || r == '\t'):
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted || escaped {
		return nil, errors.New("unterminated quote in iptables rule: " + line)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}
