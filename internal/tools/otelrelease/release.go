// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/semver"
)

// Module path prefixes of the two repositories whose modules are released
// together: the collector core (and its tools, ocb and mdatagen) and contrib.
const (
	corePath    = "go.opentelemetry.io/collector"
	contribPath = "github.com/open-telemetry/opentelemetry-collector-contrib"
)

// Set is one of the four version series a collector release publishes:
// core's unstable v0.N and stable v1.M modules, contrib's v0.N modules and
// contrib's stable v1.K modules (k8sattributesprocessor since v0.161.0).
type Set int

// The release sets, in the order reports list them.
const (
	CoreUnstable Set = iota
	CoreStable
	ContribUnstable
	ContribStable
)

func (s Set) String() string {
	return [...]string{"core v0", "core v1", "contrib v0", "contrib v1"}[s]
}

// Classify tells which release set a required module belongs to, by its
// path and the major version it is at, and false for a module that is not
// the collector's (go.opentelemetry.io/otel, for one, has releases of its own).
func Classify(path, version string) (Set, bool) {
	stable := semver.Major(version) == "v1"
	switch {
	case path == corePath || strings.HasPrefix(path, corePath+"/"):
		if stable {
			return CoreStable, true
		}
		return CoreUnstable, true
	case strings.HasPrefix(path, contribPath+"/"):
		if stable {
			return ContribStable, true
		}
		return ContribUnstable, true
	}
	return 0, false
}

// Release is one version of each set: what `make update-otel` moves every
// collector module to.
type Release struct {
	Core, CoreStable, Contrib, ContribStable string
	// Moved holds the modules that left a v0 series for the stable one at
	// this release (configgrpc at v1.64.0/v0.158.0, k8sattributesprocessor
	// at v1.0.0/v0.161.0): path to its stable version. update fills it from
	// the proxy: a v0 module not served at v0.N.P but served at the stable
	// version of its repository.
	Moved map[string]string
}

// StableFor returns the stable version of the repository of a module.
func (r Release) StableFor(path string) string {
	if strings.HasPrefix(path, contribPath+"/") {
		return r.ContribStable
	}
	return r.CoreStable
}

// minor returns N of vX.N.P, or -1 for a version that is not canonical semver.
func minor(v string) int {
	if !semver.IsValid(v) || semver.Canonical(v) != v {
		return -1
	}
	parts := strings.SplitN(strings.TrimPrefix(semver.MajorMinor(v), "v"), ".", 2)
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

// NewRelease checks the versions given to update-otel and fills in the
// contrib ones: contrib takes core's v0 version unless given (contrib
// publishes patch releases of its own, v0.N.1), and contrib's stable series
// counts from its v1.0.0 at v0.161.0 (v1.(N-161).0) unless given. The core
// stable version is derived by the caller from ocb's go.mod when not given.
func NewRelease(core, coreStable, contrib, contribStable string) (Release, error) {
	if semver.Major(core) != "v0" || minor(core) < 0 {
		return Release{}, fmt.Errorf("VERSION %q: want the collector's v0.N.P release, e.g. v0.159.0", core)
	}
	if semver.Major(coreStable) != "v1" || minor(coreStable) < 0 {
		return Release{}, fmt.Errorf("STABLE %q: want core's v1.M.P release paired with %s, e.g. v1.65.0", coreStable, core)
	}
	if contrib == "" {
		contrib = core
	}
	if semver.Major(contrib) != "v0" || minor(contrib) != minor(core) {
		return Release{}, fmt.Errorf("CONTRIB %q: want contrib's v0.%d.P release, the minor of VERSION %s", contrib, minor(core), core)
	}
	if contribStable == "" && minor(core) >= 161 {
		contribStable = fmt.Sprintf("v1.%d.0", minor(core)-161)
	}
	if contribStable != "" && (semver.Major(contribStable) != "v1" || minor(contribStable) < 0) {
		return Release{}, fmt.Errorf("CONTRIB_STABLE %q: want contrib's v1.K.P release", contribStable)
	}
	return Release{Core: core, CoreStable: coreStable, Contrib: contrib, ContribStable: contribStable}, nil
}

// Target returns the version a required collector module moves to in r,
// and false for a module that is not the collector's.
func (r Release) Target(path, current string) (string, bool) {
	set, ok := Classify(path, current)
	if !ok {
		return "", false
	}
	if v, moved := r.Moved[path]; moved {
		return v, true
	}
	switch set {
	case CoreUnstable:
		return r.Core, true
	case CoreStable:
		return r.CoreStable, true
	case ContribUnstable:
		return r.Contrib, true
	default:
		if r.ContribStable == "" {
			return "", false
		}
		return r.ContribStable, true
	}
}
