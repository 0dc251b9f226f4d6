// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// download is what `go mod download -json` tells of one module version.
type download struct {
	Path, Version, Error, GoMod, Dir string
}

// Refused is a module version the proxy does not serve whole (.info, .mod
// and .zip), with the go command's reason.
type Refused struct {
	Mod    module.Version
	Reason string
	// RequiredBy lists the served modules whose go.mod requires it; empty
	// for a module asked for directly.
	RequiredBy []string
	// ImportedBy lists those of them whose non-test Go code imports it: a
	// requirement nothing imports needs no zip (mdatagen v0.159.0 requires
	// scraper/xscraper v0.159.0, which is not served, and builds).
	ImportedBy []string
}

// ServedClosure downloads mods and, following their go.mod files, every
// collector module they require, and returns those the module proxy
// refuses. The closure matters: mdatagen v0.161.0 is served, but the
// internal/schemagen v0.161.0 it imports is not, so it cannot be built.
func ServedClosure(goCmd string, mods []module.Version) ([]Refused, error) {
	seen := map[module.Version]bool{}
	requiredBy := map[module.Version][]download{}
	var refused []Refused
	todo := mods
	for len(todo) > 0 {
		var batch []module.Version
		for _, m := range todo {
			if !seen[m] {
				seen[m] = true
				batch = append(batch, m)
			}
		}
		todo = nil
		results, err := goModDownload(goCmd, batch)
		if err != nil {
			return nil, err
		}
		for _, d := range results {
			m := module.Version{Path: d.Path, Version: d.Version}
			if d.Error != "" {
				x := Refused{Mod: m, Reason: d.Error}
				for _, by := range requiredBy[m] {
					x.RequiredBy = append(x.RequiredBy, by.Path+"@"+by.Version)
					imports, err := importsModule(by.Dir, by.Path, m.Path)
					if err != nil {
						return nil, err
					}
					if imports {
						x.ImportedBy = append(x.ImportedBy, by.Path+"@"+by.Version)
					}
				}
				refused = append(refused, x)
				continue
			}
			data, err := os.ReadFile(d.GoMod)
			if err != nil {
				return nil, fmt.Errorf("reading the go.mod of %s@%s: %w", d.Path, d.Version, err)
			}
			next, err := collectorRequires(d.GoMod, data)
			if err != nil {
				return nil, err
			}
			for _, n := range next {
				requiredBy[n] = append(requiredBy[n], d)
			}
			todo = append(todo, next...)
		}
	}
	sort.Slice(refused, func(i, j int) bool { return refused[i].Mod.String() < refused[j].Mod.String() })
	return refused, nil
}

// collectorRequires lists the collector modules a downloaded go.mod
// requires (its replace directives point into its own repository and do not
// apply to us).
func collectorRequires(name string, data []byte) ([]module.Version, error) {
	f, err := modfile.ParseLax(name, data, nil)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}
	var mods []module.Version
	for _, r := range f.Require {
		if _, ok := Classify(r.Mod.Path, r.Mod.Version); ok {
			mods = append(mods, r.Mod)
		}
	}
	return mods, nil
}

// importsModule tells whether the root package of the module extracted at
// dir (modPath), or a package of the same module it imports, imports a
// package of module path, reading their non-test Go files. A requirement
// that only other packages import needs no zip: mdatagen v0.159.0 requires
// scraper/xscraper v0.159.0 (not served) for its sample scrapers, which the
// mdatagen command does not import, and builds.
func importsModule(dir, modPath, path string) (bool, error) {
	seen := map[string]bool{}
	todo := []string{modPath}
	for len(todo) > 0 {
		pkg := todo[0]
		todo = todo[1:]
		if seen[pkg] {
			continue
		}
		seen[pkg] = true
		imports, err := packageImports(filepath.Join(dir, strings.TrimPrefix(strings.TrimPrefix(pkg, modPath), "/")))
		if err != nil {
			return false, fmt.Errorf("looking for imports of %s in %s: %w", path, pkg, err)
		}
		for _, imp := range imports {
			switch {
			case imp == path || strings.HasPrefix(imp, path+"/"):
				return true, nil
			case strings.HasPrefix(imp, modPath+"/"):
				todo = append(todo, imp)
			}
		}
	}
	return false, nil
}

// packageImports lists the imports of the non-test Go files of one
// package directory (none for a directory without Go files).
func packageImports(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var imports []string
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ImportsOnly)
		if err != nil {
			return nil, err
		}
		for _, imp := range f.Imports {
			imports = append(imports, strings.Trim(imp.Path.Value, `"`))
		}
	}
	return imports, nil
}

// goModDownload runs `go mod download -json` outside any module; it exits
// non-zero when one version fails, and still reports every one.
func goModDownload(goCmd string, mods []module.Version) ([]download, error) {
	if len(mods) == 0 {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "otelrelease-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory for go mod download: %w", err)
	}
	defer os.RemoveAll(dir)
	args := []string{"mod", "download", "-json"}
	for _, m := range mods {
		args = append(args, m.String())
	}
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var results []download
	dec := json.NewDecoder(&stdout)
	for {
		var d download
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go mod download -json: %w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
		}
		results = append(results, d)
	}
	if runErr != nil && len(results) == 0 {
		return nil, fmt.Errorf("go mod download: %w: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	return results, nil
}
