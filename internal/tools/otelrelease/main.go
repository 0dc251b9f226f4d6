// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command otelrelease keeps every OpenTelemetry Collector module of oomsight
// at one collector release: the core and contrib modules of go.mod,
// deploy/go.mod, internal/tools/go.mod (ocb, mdatagen) and the distribution's
// builder-config.yaml.
//
//	otelrelease check  [-root DIR]
//	otelrelease update [-root DIR] -version v0.N.P [-stable v1.M.P] [-contrib v0.N.P] [-contrib-stable v1.K.P]
//
// check fails, listing them, when a collector module is off the release of
// the others (`make check-otel`, part of `make test`). update first asks the
// module proxy for every collector module at the new release, and the
// collector modules those require, and fails listing the ones it does not
// serve, before it changes anything; then it rewrites the four files.
// `make update-otel` runs it and then tidies, regenerates, builds and vets.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// The files that name collector modules, relative to the repository root.
var (
	goModFiles  = []string{"go.mod", "deploy/go.mod", "internal/tools/go.mod"}
	builderFile = "builder-config.yaml"
	// pairModule is a core v0 module that requires core v1 component: its
	// go.mod at v0.N.P names the v1.M.P released with it.
	pairModule = corePath + "/component/componenttest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "otelrelease:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: otelrelease check|update [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	root := fs.String("root", ".", "the repository root")
	goCmd := fs.String("go", "go", "the go command")
	core := fs.String("version", "", "core's v0.N.P release (update)")
	stable := fs.String("stable", "", "core's v1.M.P release; default: what componenttest v0.N.P requires (update)")
	contrib := fs.String("contrib", "", "contrib's v0.N.P release; default: -version (update)")
	contribStable := fs.String("contrib-stable", "", "contrib's v1.K.P release; default: v1.(N-161).0 (update)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	reqs, err := readRequirements(*root)
	if err != nil {
		return err
	}
	switch args[0] {
	case "check":
		return check(reqs, out)
	case "update":
		if *stable == "" {
			if *stable, err = stableOf(*goCmd, *core); err != nil {
				return err
			}
		}
		r, err := NewRelease(*core, *stable, *contrib, *contribStable)
		if err != nil {
			return err
		}
		return update(*goCmd, *root, reqs, r, out)
	}
	return fmt.Errorf("unknown command %q: want check or update", args[0])
}

func check(reqs []Requirement, out io.Writer) error {
	skews := Check(reqs)
	for _, s := range skews {
		fmt.Fprintln(out, s)
	}
	if len(skews) > 0 {
		return fmt.Errorf("%d collector module(s) off the release of the others: move them all with make update-otel VERSION=v0.N.0", len(skews))
	}
	fmt.Fprintf(out, "otelrelease: %d collector module requirements in %d files, one release\n", len(reqs), len(goModFiles)+1)
	return nil
}

func readRequirements(root string) ([]Requirement, error) {
	var reqs []Requirement
	for _, name := range goModFiles {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		r, err := GoModRequirements(name, data)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r...)
	}
	data, err := os.ReadFile(filepath.Join(root, builderFile))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", builderFile, err)
	}
	return append(reqs, BuilderRequirements(builderFile, data)...), nil
}

// targets lists the module versions the requirements move to in r.
func targets(reqs []Requirement, r Release) []module.Version {
	seen := map[module.Version]bool{}
	var want []module.Version
	for _, req := range reqs {
		if req.Replace {
			continue
		}
		if v, ok := r.Target(req.Path, req.Version); ok {
			m := module.Version{Path: req.Path, Version: v}
			if !seen[m] {
				seen[m] = true
				want = append(want, m)
			}
		}
	}
	return want
}

// movedToStable asks the proxy, for each module asked for at a v0 version
// and refused, for the stable version of its repository, and returns those
// served there: they left the v0 series.
func movedToStable(goCmd string, refused []Refused, r Release) (map[string]string, error) {
	var alt []module.Version
	for _, x := range refused {
		if stable := r.StableFor(x.Mod.Path); len(x.RequiredBy) == 0 && semver.Major(x.Mod.Version) == "v0" && stable != "" {
			alt = append(alt, module.Version{Path: x.Mod.Path, Version: stable})
		}
	}
	results, err := goModDownload(goCmd, alt)
	if err != nil {
		return nil, err
	}
	moved := map[string]string{}
	for _, d := range results {
		if d.Error == "" {
			moved[d.Path] = d.Version
		}
	}
	return moved, nil
}

// stableOf derives core's v1 release paired with v0.N.P from what
// componenttest v0.N.P's own go.mod requires of
// go.opentelemetry.io/collector/component (ocb's go.mod requires none).
func stableOf(goCmd, core string) (string, error) {
	pair := module.Version{Path: pairModule, Version: core}
	results, err := goModDownload(goCmd, []module.Version{pair})
	if err != nil {
		return "", err
	}
	if len(results) != 1 || results[0].Error != "" {
		return "", fmt.Errorf("the module proxy does not serve %s, so core's v1 release cannot be derived from it (give STABLE=v1.M.P to check the rest): %v", pair, results)
	}
	data, err := os.ReadFile(results[0].GoMod)
	if err != nil {
		return "", fmt.Errorf("reading the go.mod of %s: %w", pair, err)
	}
	mods, err := collectorRequires(results[0].GoMod, data)
	if err != nil {
		return "", err
	}
	for _, m := range mods {
		if m.Path == corePath+"/component" {
			return m.Version, nil
		}
	}
	return "", fmt.Errorf("%s does not require %s/component: give STABLE=v1.M.P", pair, corePath)
}

func update(goCmd, root string, reqs []Requirement, r Release, out io.Writer) error {
	fmt.Fprintf(out, "otelrelease: asking the module proxy for the collector modules at core %s / %s, contrib %s", r.Core, r.CoreStable, r.Contrib)
	if r.ContribStable != "" {
		fmt.Fprintf(out, " / %s", r.ContribStable)
	}
	fmt.Fprintln(out, ", and the collector modules they require")
	refused, err := ServedClosure(goCmd, targets(reqs, r))
	if err != nil {
		return err
	}
	moved, err := movedToStable(goCmd, refused, r)
	if err != nil {
		return err
	}
	if len(moved) > 0 {
		r.Moved = moved
		for path, v := range moved {
			fmt.Fprintf(out, "moved to its stable series: %s %s\n", path, v)
		}
		if refused, err = ServedClosure(goCmd, targets(reqs, r)); err != nil {
			return err
		}
	}
	fatal := 0
	for _, x := range refused {
		switch {
		case len(x.RequiredBy) == 0:
			fatal++
			fmt.Fprintf(out, "not served: %s\n", x.Mod)
		case len(x.ImportedBy) > 0:
			fatal++
			fmt.Fprintf(out, "not served: %s, imported by %v\n", x.Mod, x.ImportedBy)
		default:
			fmt.Fprintf(out, "note: %s is not served; %v require it but do not import it, so builds need no more than its absence\n", x.Mod, x.RequiredBy)
		}
	}
	if fatal > 0 {
		return fmt.Errorf("the module proxy does not serve %d collector module(s) of this release; nothing was changed", fatal)
	}
	for _, name := range goModFiles {
		path := filepath.Join(root, name)
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return fmt.Errorf("reading %s: %w", name, rerr)
		}
		if data, err = RewriteGoMod(name, data, r); err != nil {
			return err
		}
		if werr := os.WriteFile(path, data, 0o644); werr != nil {
			return fmt.Errorf("writing %s: %w", name, werr)
		}
	}
	path := filepath.Join(root, builderFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", builderFile, err)
	}
	if err := os.WriteFile(path, RewriteBuilder(data, r), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", builderFile, err)
	}
	fmt.Fprintf(out, "otelrelease: rewrote %v and %s\n", goModFiles, builderFile)
	return nil
}
