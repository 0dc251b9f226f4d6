package discovery

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Walk returns the paths of all cgroups below dir (the hierarchy root) that
// f selects, relative to dir and as the kernel prints them ("/" for the root,
// "/a/b" below it), in lexical order. Cgroups removed while walking are
// skipped without error; any other failure to read a directory is returned
// together with what could be listed.
func Walk(dir string, f *Filter) ([]string, error) {
	var paths []string
	var errs []error
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				if p == dir {
					return err
				}
				return fs.SkipDir
			}
			errs = append(errs, err)
			if p == dir {
				return err
			}
			return fs.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		rel := cgroupPath(dir, p)
		if f.Match(rel) {
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.SkipDir) {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if len(errs) == 0 {
			errs = append(errs, err)
		}
	}
	return paths, errors.Join(errs...)
}

// cgroupPath turns a directory below the hierarchy root into the path the
// kernel prints for that cgroup.
func cgroupPath(root, dir string) string {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." {
		return "/"
	}
	return "/" + filepath.ToSlash(rel)
}
