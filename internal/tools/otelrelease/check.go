// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"sort"

	"golang.org/x/mod/semver"
)

// Requirement is one collector module named at one version in one file
// (go.mod, deploy/go.mod, internal/tools/go.mod, builder-config.yaml).
type Requirement struct {
	File, Path, Version string
	// Replace is set for a module pinned by a replace directive or an ocb
	// `replaces:` entry: a pin holds it apart from the release on purpose,
	// and the check reports it so that it is dropped once not needed.
	Replace bool
}

// Skew is a requirement off its set's release (or held by a replace).
type Skew struct {
	Requirement
	Want string
}

func (s Skew) String() string {
	if s.Replace {
		return fmt.Sprintf("%s: %s %s is pinned by a replace (the release is %s)", s.File, s.Path, s.Version, s.Want)
	}
	return fmt.Sprintf("%s: %s %s, the release is %s", s.File, s.Path, s.Version, s.Want)
}

// Check finds the collector modules that are not at the release of the
// others: within each set (core v0, core v1, contrib v0, contrib v1) the
// release is the version most requirements name (ties: the newest), and
// contrib v0 must be at core v0's minor (contrib's patch releases, v0.N.1,
// are allowed). Requirements of other modules are ignored.
func Check(reqs []Requirement) []Skew {
	counts := map[Set]map[string]int{}
	for _, r := range reqs {
		set, ok := Classify(r.Path, r.Version)
		if !ok || r.Replace {
			continue
		}
		if counts[set] == nil {
			counts[set] = map[string]int{}
		}
		counts[set][r.Version]++
	}
	want := map[Set]string{}
	for set, c := range counts {
		best := ""
		for v, n := range c {
			if best == "" || n > c[best] || (n == c[best] && semver.Compare(v, best) > 0) {
				best = v
			}
		}
		want[set] = best
	}
	var skews []Skew
	for _, r := range reqs {
		set, ok := Classify(r.Path, r.Version)
		if !ok {
			continue
		}
		switch {
		case r.Replace:
			skews = append(skews, Skew{r, want[set]})
		case r.Version != want[set]:
			skews = append(skews, Skew{r, want[set]})
		case set == ContribUnstable && want[CoreUnstable] != "" && minor(r.Version) != minor(want[CoreUnstable]):
			skews = append(skews, Skew{r, fmt.Sprintf("v0.%d.x (core is at %s)", minor(want[CoreUnstable]), want[CoreUnstable])})
		}
	}
	sort.SliceStable(skews, func(i, j int) bool {
		if skews[i].File != skews[j].File {
			return skews[i].File < skews[j].File
		}
		return skews[i].Path < skews[j].Path
	})
	return skews
}
