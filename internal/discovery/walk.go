// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package discovery // import "github.com/oomsight/oomsight/internal/discovery"

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
)

// Walk returns the paths of all cgroups below dir (the hierarchy root) that
// f selects, relative to dir and as the kernel prints them ("/" for the root,
// "/a/b" below it), in lexical order. It does not descend where f cannot
// select anything (Filter.MayContain). Cgroups removed while walking are
// skipped without error; any other failure to read a directory is returned
// together with what could be listed.
func Walk(dir string, f *Filter) ([]string, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	var paths []string
	failed := walk(dir, "/", f, func(rel string) error {
		if f.Match(rel) {
			paths = append(paths, rel)
		}
		return nil
	})
	sort.Strings(paths)
	var errs []error
	for _, fd := range failed {
		errs = append(errs, fd.Err)
	}
	return paths, errors.Join(errs...)
}

// DirError is a directory that could not be listed: nothing is known of
// the cgroups below it.
type DirError struct {
	Path string // cgroup path of the directory
	Err  error
}

func (e *DirError) Error() string { return fmt.Sprintf("listing cgroup %s: %v", e.Path, e.Err) }

func (e *DirError) Unwrap() error { return e.Err }

// walk calls visit for every cgroup directory at and below rel (a cgroup
// path; root is the hierarchy's directory), parents before children, not
// descending where f cannot select anything. It reads directory entries
// unsorted and uses their d_type, so it never stats the ~30 files of each
// cgroup. A directory that vanished is skipped; the others that could not
// be listed are returned. visit may stop the walk below a directory by
// returning fs.SkipDir.
func walk(root, rel string, f *Filter, visit func(rel string) error) []*DirError {
	var failed []*DirError
	var rec func(rel string)
	rec = func(rel string) {
		if err := visit(rel); err != nil {
			return
		}
		fh, err := os.Open(root + pathSuffix(rel))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				failed = append(failed, &DirError{Path: rel, Err: err})
			}
			return
		}
		ents, err := fh.ReadDir(-1)
		_ = fh.Close() // read-only: nothing to lose
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			failed = append(failed, &DirError{Path: rel, Err: err})
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			child := join(rel, e.Name())
			if f.MayContain(child) {
				rec(child)
			}
		}
	}
	rec(rel)
	return failed
}

// join appends a directory name to a cgroup path.
func join(rel, name string) string {
	if rel == "/" {
		return "/" + name
	}
	return rel + "/" + name
}

// pathSuffix is what a cgroup path adds to the hierarchy's directory.
func pathSuffix(rel string) string {
	if rel == "/" {
		return ""
	}
	return rel
}
