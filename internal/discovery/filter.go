// Package discovery lists the cgroups of a memory hierarchy and selects them
// with include/exclude globs on their path.
package discovery // import "github.com/oomsight/oomsight/internal/discovery"

import (
	"fmt"

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
	return f, nil
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
		out = append(out, g)
	}
	return out, nil
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
