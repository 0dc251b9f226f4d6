// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command vulndb builds a local Go vulnerability database for govulncheck
// (`govulncheck -db file://DIR`) from the OSV entries of the
// golang.org/x/vulndb module (data/osv), for machines that reach the module
// proxy but not the vulnerability database's site. The module comes through
// the proxy and is checked against the checksum database like any other.
//
//	vulndb -version v0.0.0-… -out DIR
//
// DIR gets the v1 layout of https://go.dev/security/vuln/database#api:
// index/db.json, index/modules.json, index/vulns.json and ID/<id>.json.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
)

const vulndbModule = "golang.org/x/vulndb"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("vulndb", flag.ContinueOnError)
	version := fs.String("version", "", "the golang.org/x/vulndb version (a pseudo-version)")
	out := fs.String("out", "", "the directory to write the database to")
	goCmd := fs.String("go", "go", "the go command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *out == "" {
		return errors.New("usage: vulndb -version v0.0.0-… -out DIR")
	}
	stamp, err := module.PseudoVersionTime(*version)
	if err != nil {
		return fmt.Errorf("%s@%s: want a pseudo-version, whose time stamps the database: %w", vulndbModule, *version, err)
	}
	dir, err := download(*goCmd, *version)
	if err != nil {
		return err
	}
	files, err := readOSV(filepath.Join(dir, "data", "osv"))
	if err != nil {
		return err
	}
	idx, err := BuildIndex(files, stamp.UTC())
	if err != nil {
		return err
	}
	return write(*out, files, idx)
}

// download fetches the vulndb module through the module proxy and returns
// its directory in the module cache.
func download(goCmd, version string) (string, error) {
	tmp, err := os.MkdirTemp("", "vulndb-")
	if err != nil {
		return "", fmt.Errorf("temporary directory for go mod download: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(goCmd, "mod", "download", "-json", vulndbModule+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Stderr = os.Stderr
	data, err := cmd.Output()
	var d struct{ Dir, Error string }
	if jerr := json.Unmarshal(data, &d); jerr != nil || d.Error != "" || err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w %s %w", vulndbModule, version, err, d.Error, jerr)
	}
	return d.Dir, nil
}

func readOSV(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the OSV entries: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading an OSV entry: %w", err)
		}
		files[e.Name()] = data
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no OSV entries in %s", dir)
	}
	return files, nil
}

// write lays the database out in a fresh directory beside out and renames
// it into place, so that an interrupted build leaves no half database that
// make would take for a built one.
func write(out string, files map[string][]byte, idx Index) error {
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clearing %s: %w", tmp, err)
	}
	for _, d := range []string{"index", "ID"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return fmt.Errorf("creating the database: %w", err)
		}
	}
	for name, data := range map[string][]byte{"index/db.json": idx.DB, "index/modules.json": idx.Modules, "index/vulns.json": idx.Vulns} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, "ID", name), data, 0o644); err != nil {
			return fmt.Errorf("writing ID/%s: %w", name, err)
		}
	}
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("clearing %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("moving the database into place: %w", err)
	}
	fmt.Printf("vulndb: %d entries of %s into %s\n", len(files), vulndbModule, out)
	return nil
}
