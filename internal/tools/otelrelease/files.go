// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/mod/modfile"
)

// ocb's builder-config.yaml names modules as `gomod: PATH VERSION` and pins
// them as `- OLD [VERSION] => NEW [VERSION]` under replaces:. It is edited as
// text, line by line, so that its comments stay where they are.
var (
	gomodLine   = regexp.MustCompile(`^(\s*-?\s*gomod:\s*)(\S+)(\s+)(v\S+)(.*)$`)
	replaceLine = regexp.MustCompile(`^\s*-\s*(\S+)(?:\s+(v\S+))?\s*=>\s*(\S+)(?:\s+(v\S+))?`)
)

// BuilderRequirements lists the collector modules of an ocb configuration.
func BuilderRequirements(file string, data []byte) []Requirement {
	var reqs []Requirement
	replaces := false
	for line := range strings.SplitSeq(string(data), "\n") {
		if line != "" && line[0] != ' ' && line[0] != '#' && line[0] != '-' {
			replaces = strings.HasPrefix(line, "replaces:")
		}
		if m := gomodLine.FindStringSubmatch(line); m != nil {
			if _, ok := Classify(m[2], m[4]); ok {
				reqs = append(reqs, Requirement{File: file, Path: m[2], Version: m[4]})
			}
			continue
		}
		if m := replaceLine.FindStringSubmatch(line); replaces && m != nil {
			// One entry a pin: the module it substitutes when that is a
			// versioned collector module, else the one it replaces.
			path, version := m[3], m[4]
			if _, ok := Classify(path, version); !ok || version == "" {
				path, version = m[1], m[2]
			}
			if _, ok := Classify(path, version); ok {
				reqs = append(reqs, Requirement{File: file, Path: path, Version: version, Replace: true})
			}
		}
	}
	return reqs
}

// RewriteBuilder sets every collector module of an ocb configuration to its
// version in r; replaces are left alone (Check reports them).
func RewriteBuilder(data []byte, r Release) []byte {
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		m := gomodLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if v, ok := r.Target(m[2], m[4]); ok {
			lines[i] = m[1] + m[2] + m[3] + v + m[5]
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// GoModRequirements lists the collector modules a go.mod requires, and the
// ones its replace directives pin to a version.
func GoModRequirements(file string, data []byte) ([]Requirement, error) {
	f, err := modfile.Parse(file, data, nil)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	var reqs []Requirement
	for _, r := range f.Require {
		if _, ok := Classify(r.Mod.Path, r.Mod.Version); ok {
			reqs = append(reqs, Requirement{File: file, Path: r.Mod.Path, Version: r.Mod.Version})
		}
	}
	for _, r := range f.Replace {
		if _, ok := Classify(r.New.Path, r.New.Version); ok && r.New.Version != "" {
			reqs = append(reqs, Requirement{File: file, Path: r.New.Path, Version: r.New.Version, Replace: true})
		}
	}
	return reqs, nil
}

// RewriteGoMod sets every collector module a go.mod requires to its version
// in r, keeping the file's layout and comments; `go mod tidy` runs after.
func RewriteGoMod(file string, data []byte, r Release) ([]byte, error) {
	f, err := modfile.Parse(file, data, nil)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	for _, req := range f.Require {
		if v, ok := r.Target(req.Mod.Path, req.Mod.Version); ok && v != req.Mod.Version {
			if aerr := f.AddRequire(req.Mod.Path, v); aerr != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", file, req.Mod.Path, v, aerr)
			}
		}
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return nil, fmt.Errorf("formatting %s: %w", file, err)
	}
	return out, nil
}
