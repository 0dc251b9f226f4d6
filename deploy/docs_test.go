// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mdLink is a Markdown inline link or image: the target is group 1, up to
// the first space (a title may follow) or closing parenthesis.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)[^)]*\)`)

// TestDocsLinks: every relative link in the repository's Markdown (README,
// docs/, the receiver's README, the test harnesses' READMEs) points to a
// file that exists, and a link to a heading (file.md#anchor or #anchor)
// to a heading that exists, so that moving or renaming a page or a section
// fails here instead of leaving readers at a dead end. External links
// (http, https, mailto) are not fetched.
func TestDocsLinks(t *testing.T) {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	pages := markdownFiles(t, root)
	require.Contains(t, pages, filepath.Join(root, "README.md"))
	checked := 0
	for _, page := range pages {
		rel, err := filepath.Rel(root, page)
		require.NoError(t, err)
		for _, l := range links(t, page) {
			if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
				continue
			}
			checked++
			path, anchor, _ := strings.Cut(l.target, "#")
			dest := page
			if path != "" {
				dest = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
				if _, err := os.Stat(dest); err != nil {
					assert.Failf(t, "broken link", "%s:%d: %s: %v", rel, l.line, l.target, err)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			if !anchors(t, dest)[anchor] {
				assert.Failf(t, "broken anchor", "%s:%d: %s: no heading with the anchor %q in %s", rel, l.line, l.target, anchor, filepath.Base(dest))
			}
		}
	}
	assert.Greater(t, checked, 50, "the docs hold more relative links than that: is the link pattern broken?")
}

// markdownFiles lists the Markdown files of the repository, leaving out
// build output and fetched modules.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "_build" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			out = append(out, path)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// link is one link target on a line of a page.
type link struct {
	target string
	line   int
}

// links returns the link targets of a Markdown file outside fenced code
// blocks and inline code spans.
func links(t *testing.T, page string) []link {
	t.Helper()
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	var out []link
	fenced := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(withoutCode(line), -1) {
			out = append(out, link{target: m[1], line: n})
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// withoutCode blanks the inline code spans of a line (`…`), where a
// bracket followed by a parenthesis is code, not a link.
func withoutCode(line string) string {
	parts := strings.Split(line, "`")
	for i := 1; i < len(parts); i += 2 {
		parts[i] = ""
	}
	return strings.Join(parts, "``")
}

// anchors returns the anchors GitHub gives the headings of a Markdown
// file: lower case, punctuation other than - and _ dropped, spaces as -,
// a repeated heading suffixed -1, -2, …
func anchors(t *testing.T, page string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		slug := slugify(strings.TrimLeft(line, "#"))
		if k := seen[slug]; k > 0 {
			out[slug+"-"+strconv.Itoa(k)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// slugify is GitHub's heading anchor rule.
func slugify(heading string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			sb.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			sb.WriteRune(r)
		}
	}
	return sb.String()
}
