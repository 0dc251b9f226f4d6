// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package discovery lists the cgroups of a memory hierarchy and selects them
// with include/exclude globs on their path.
package discovery // import "github.com/oomsight/oomsight/internal/discovery"

import (
	"fmt"
	"strings"

	"github.com/gobwas/glob"
)

// Filter selects cgroup paths. A path is selected when it matches at least
// one include glob (or there are none) and no exclude glob. In the globs, *
// matches within one path segment and ** across segments, so "/kubepods*/**"
// is every cgroup below a top-level kubepods hierarchy and
// "**/kubepods*/**" also finds it below a prefix.
type Filter struct {
	include []glob.Glob
	exclude []glob.Glob
	// prefixes are the include globs split into path segments, for
	// MayContain; nil when some include cannot be split (then nothing is
	// pruned).
	prefixes [][]segment
}

// segment is one path segment of an include glob.
type segment struct {
	literal string    // when glob is nil
	glob    glob.Glob // a segment with * ? or [ ]
	any     bool      // a segment with **: this and everything below
}

// NewFilter compiles the globs. The error names the bad pattern.
func NewFilter(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	var err error
	if f.include, err = compile("include", include); err != nil {
		return nil, err
	}
	if f.exclude, err = compile("exclude", exclude); err != nil {
		return nil, err
	}
	f.prefixes = splitGlobs(include)
	return f, nil
}

// splitGlobs splits include globs into segments. A glob with braces
// (which may span segments) or not starting at the root disables pruning.
func splitGlobs(include []string) [][]segment {
	var out [][]segment
	for _, p := range include {
		if strings.ContainsAny(p, "{}") || !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "**") {
			return nil
		}
		var segs []segment
		for part := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
			switch {
			case strings.Contains(part, "**"):
				segs = append(segs, segment{any: true})
			case strings.ContainsAny(part, "*?["):
				g, err := glob.Compile(part)
				if err != nil {
					return nil
				}
				segs = append(segs, segment{glob: g})
			default:
				segs = append(segs, segment{literal: part})
			}
		}
		out = append(out, segs)
	}
	return out
}

// MayContain reports whether the cgroup directory at dir, or one below it,
// can be selected by the include globs: a walk need not descend where it
// cannot ("/system.slice" for "/kubepods*/**"). Excludes never prune: a
// cgroup below an excluded one can still be selected.
func (f *Filter) MayContain(dir string) bool {
	if f == nil || len(f.include) == 0 || f.prefixes == nil || dir == "/" {
		return true
	}
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	for _, segs := range f.prefixes {
		if mayContain(segs, parts) {
			return true
		}
	}
	return false
}

func mayContain(segs []segment, parts []string) bool {
	for i, part := range parts {
		if i >= len(segs) {
			return false // the glob ends above this directory
		}
		s := segs[i]
		switch {
		case s.any:
			return true
		case s.glob != nil:
			if !s.glob.Match(part) {
				return false
			}
		case s.literal != part:
			return false
		}
	}
	return true
}

func compile(key string, patterns []string) ([]glob.Glob, error) {
	out := make([]glob.Glob, 0, len(patterns))
	for i, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("%s[%d]: empty glob", key, i)
		}
		g, err := glob.Compile(p, '/')
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: bad glob %q: %w", key, i, p, err)
		}
		if !mayMatchRooted(p) {
			return nil, fmt.Errorf("%s[%d]: glob %q matches no cgroup: cgroup.path starts with \"/\" (write %q, or %q for any depth)",
				key, i, p, "/"+p, "**/"+p)
		}
		out = append(out, g)
	}
	return out, nil
}

// mayMatchRooted reports whether a glob can match a path that starts with
// "/", as every cgroup.path does. A glob that starts with a literal other
// than "/", or with "?" (which never matches the separator), cannot: such a
// setting would select nothing, or exclude nothing, without a word.
func mayMatchRooted(p string) bool {
	switch p[0] {
	case '/', '*', '{', '[', '\\':
		return true
	}
	return false
}

// Match reports whether the cgroup at path is selected.
func (f *Filter) Match(path string) bool {
	if f == nil {
		return true
	}
	for _, g := range f.exclude {
		if g.Match(path) {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, g := range f.include {
		if g.Match(path) {
			return true
		}
	}
	return false
}
