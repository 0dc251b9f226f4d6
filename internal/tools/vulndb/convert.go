// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"golang.org/x/mod/semver"
)

// entry is the part of an OSV entry of the Go vulnerability database that
// the index needs; the entry itself is copied byte for byte.
type entry struct {
	ID       string     `json:"id"`
	Modified time.Time  `json:"modified"`
	Aliases  []string   `json:"aliases,omitempty"`
	Affected []affected `json:"affected"`
}

type affected struct {
	Package struct {
		Name string `json:"name"`
	} `json:"package"`
	Ranges []osvRange `json:"ranges,omitempty"`
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced,omitempty"`
		Fixed      string `json:"fixed,omitempty"`
	} `json:"events"`
}

// The v1 database's index files (https://go.dev/security/vuln/database#api):
// index/db.json, index/modules.json, index/vulns.json.
type (
	dbMeta struct {
		Modified time.Time `json:"modified"`
	}
	moduleVuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	moduleMeta struct {
		Path  string       `json:"path"`
		Vulns []moduleVuln `json:"vulns"`
	}
	vulnMeta struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Aliases  []string  `json:"aliases,omitempty"`
	}
)

// Index is the three index files of a v1 database, as JSON.
type Index struct {
	DB, Modules, Vulns []byte
}

// BuildIndex parses the OSV entries (file name to content) and builds the
// v1 index over them. The entries of x/vulndb's data/osv carry a zero
// "modified" (the deployed database stamps it from git history, which a
// module zip does not have): those take the time of the vulndb version,
// which is also the database's. A file not named <id>.json is an error.
func BuildIndex(files map[string][]byte, stamp time.Time) (Index, error) {
	var db dbMeta
	db.Modified = stamp
	modules := map[string]*moduleMeta{}
	var vulns []vulnMeta
	for name, data := range files {
		var e entry
		if err := json.Unmarshal(data, &e); err != nil {
			return Index{}, fmt.Errorf("parsing %s: %w", name, err)
		}
		if name != e.ID+".json" {
			return Index{}, fmt.Errorf("%s holds entry %q: want a file named <id>.json", name, e.ID)
		}
		modified := e.Modified
		if modified.IsZero() {
			modified = stamp
		}
		if modified.After(db.Modified) {
			db.Modified = modified
		}
		vulns = append(vulns, vulnMeta{ID: e.ID, Modified: modified, Aliases: e.Aliases})
		for _, a := range e.Affected {
			m := modules[a.Package.Name]
			if m == nil {
				m = &moduleMeta{Path: a.Package.Name, Vulns: []moduleVuln{}}
				modules[a.Package.Name] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: modified, Fixed: latestFix(a.Ranges)})
		}
	}
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })
	mods := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	var idx Index
	var err error
	if idx.DB, err = json.Marshal(db); err != nil {
		return Index{}, fmt.Errorf("index/db.json: %w", err)
	}
	if idx.Modules, err = json.Marshal(mods); err != nil {
		return Index{}, fmt.Errorf("index/modules.json: %w", err)
	}
	if idx.Vulns, err = json.Marshal(vulns); err != nil {
		return Index{}, fmt.Errorf("index/vulns.json: %w", err)
	}
	return idx, nil
}

// latestFix is the "fixed" of a module's index entry: the newest fixed
// version of its SEMVER ranges, or none when the vulnerability was
// introduced again after it (govulncheck then reads the entry whatever the
// module's version). OSV versions carry no "v".
func latestFix(ranges []osvRange) string {
	latest := ""
	less := func(a, b string) bool { return semver.Compare("v"+a, "v"+b) < 0 }
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" && (latest == "" || less(latest, e.Fixed)) {
				latest = e.Fixed
			}
		}
		for _, e := range r.Events {
			if e.Introduced != "" && e.Introduced != "0" && latest != "" && less(latest, e.Introduced) {
				latest = ""
				break
			}
		}
	}
	return latest
}
