// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The targets of the redaction rules on the corpus (docs/redaction.md):
// at most 2 % of the secrets may survive and at most 3 % of the ordinary
// command lines' arguments may be altered.
const (
	maxSecretsSurviving = 0.02
	maxOrdinaryAltered  = 0.03
)

// corpusLine is one command line of testdata/redaction/corpus.tsv.
type corpusLine struct {
	line                    int
	kind, tool, source, how string
	args                    []string   // the arguments, markers removed
	secrets                 [][]string // per argument, the secrets marked in it
}

// TestRedactionCorpus measures Redact on command lines written as real
// tools' documentation writes them (each line cites its page): the share
// of marked secrets that survive anywhere in the redacted command line,
// and the share of ordinary arguments (those of the ordinary command
// lines) that come out altered. It prints every miss and both rates, and
// fails above the targets.
func TestRedactionCorpus(t *testing.T) {
	lines := readCorpus(t, "testdata/redaction/corpus.tsv")
	var secrets, survived, ordinary, altered, otherArgs, otherAltered, secretLines, ordinaryLines int
	tools := map[string]bool{}
	for _, l := range lines {
		tools[l.tool] = true
		out := Redact(l.args)
		require.Len(t, out, len(l.args), "line %d: one argument out for one in", l.line)
		joined := strings.Join(out, " ")
		if l.kind == "secret" {
			secretLines++
		} else {
			ordinaryLines++
		}
		for i, a := range l.args {
			for _, s := range l.secrets[i] {
				secrets++
				if strings.Contains(joined, s) {
					survived++
					t.Logf("line %d (%s): secret %q survives: %s", l.line, l.tool, s, joined)
				}
			}
			if len(l.secrets[i]) > 0 {
				continue
			}
			if l.kind == "ordinary" {
				ordinary++
				if out[i] != a {
					altered++
					t.Logf("line %d (%s): ordinary argument %q became %q", l.line, l.tool, a, out[i])
				}
			} else {
				otherArgs++
				if out[i] != a {
					otherAltered++
					t.Logf("line %d (%s): unmarked argument of a secret line %q became %q", l.line, l.tool, a, out[i])
				}
			}
		}
	}
	require.Positive(t, secrets)
	require.Positive(t, ordinary)
	sr, or, xr := float64(survived)/float64(secrets), float64(altered)/float64(ordinary), float64(otherAltered)/float64(otherArgs)
	t.Logf("corpus: %d command lines of %d tools (%d with secrets, %d ordinary)", len(lines), len(tools), secretLines, ordinaryLines)
	t.Logf("secrets surviving: %d of %d (%.1f %%, target ≤ %.0f %%)", survived, secrets, 100*sr, 100*maxSecretsSurviving)
	t.Logf("ordinary arguments altered: %d of %d (%.1f %%, target ≤ %.0f %%)", altered, ordinary, 100*or, 100*maxOrdinaryAltered)
	t.Logf("unmarked arguments of secret-bearing lines altered: %d of %d (%.1f %%, not a target)", otherAltered, otherArgs, 100*xr)
	if sr > maxSecretsSurviving {
		t.Errorf("%.1f %% of the secrets survive, more than %.0f %%", 100*sr, 100*maxSecretsSurviving)
	}
	if or > maxOrdinaryAltered {
		t.Errorf("%.1f %% of the ordinary arguments are altered, more than %.0f %%", 100*or, 100*maxOrdinaryAltered)
	}
}

// readCorpus reads the corpus and checks that every line is well formed:
// a cited source, secrets marked only on secret lines, at least one on
// each, and none shorter than 4 bytes (a short one could match by chance).
func readCorpus(t *testing.T, path string) []corpusLine {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var lines []corpusLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cols := strings.Split(text, "\t")
		require.Len(t, cols, 5, "line %d: want kind, tool, source, how, command", n)
		l := corpusLine{line: n, kind: cols[0], tool: cols[1], source: cols[2], how: cols[3]}
		require.Contains(t, []string{"secret", "ordinary"}, l.kind, "line %d", n)
		require.Contains(t, []string{"search", "doc"}, l.how, "line %d", n)
		require.True(t, strings.HasPrefix(l.source, "http"), "line %d: a source page", n)
		words, err := shellWords(cols[4])
		require.NoError(t, err, "line %d", n)
		marked := 0
		for _, w := range words {
			clean, secrets, err := unmark(w)
			require.NoError(t, err, "line %d", n)
			for _, s := range secrets {
				require.GreaterOrEqual(t, len(s), 4, "line %d: secret %q too short to test", n, s)
			}
			marked += len(secrets)
			l.args = append(l.args, clean)
			l.secrets = append(l.secrets, secrets)
		}
		if l.kind == "secret" {
			require.Positive(t, marked, "line %d: a secret line marks its secrets", n)
		} else {
			require.Zero(t, marked, "line %d: an ordinary line has no secret", n)
		}
		lines = append(lines, l)
	}
	require.NoError(t, sc.Err())
	return lines
}

// unmark removes the [[…]] markers from a word and returns the secrets.
func unmark(w string) (string, []string, error) {
	var b strings.Builder
	var secrets []string
	for {
		i := strings.Index(w, "[[")
		if i < 0 {
			b.WriteString(w)
			return b.String(), secrets, nil
		}
		j := strings.Index(w[i:], "]]")
		if j < 0 {
			return "", nil, fmt.Errorf("unclosed [[ in %q", w)
		}
		s := w[i+2 : i+j]
		b.WriteString(w[:i])
		b.WriteString(s)
		secrets = append(secrets, s)
		w = w[i+j+2:]
	}
}

// shellWords splits a command line as a POSIX shell would for these
// lines: blanks separate words, single quotes keep everything, double
// quotes keep everything but \" and \\, a backslash outside quotes
// escapes the next byte.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false // inside a word
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unclosed ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unclosed \" in %q", s)
			}
			in = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
