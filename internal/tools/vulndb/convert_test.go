// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// testdata/osv holds four entries copied from golang.org/x/vulndb's data/osv
// (v0.0.0-20261105234957-e22db6528018): no fix (GO-2020-0017), two
// modules with two ranges (GO-2022-0229), fixed then introduced again
// (GO-2024-2866), and the standard library fixed in go1.27.3 (GO-2026-6809).
func readTestdata(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := readOSV(filepath.Join("testdata", "osv"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestBuildIndex(t *testing.T) {
	stamp := time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)
	idx, err := BuildIndex(readTestdata(t), stamp)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(idx.DB), `{"modified":"2026-11-05T23:49:57Z"}`; got != want {
		t.Errorf("index/db.json = %s, want %s", got, want)
	}
	var modules []moduleMeta
	if err := json.Unmarshal(idx.Modules, &modules); err != nil {
		t.Fatal(err)
	}
	fixed := map[string]string{}
	for _, m := range modules {
		for _, v := range m.Vulns {
			if !v.Modified.Equal(stamp) {
				t.Errorf("%s %s: modified %v, want the vulndb version's time", m.Path, v.ID, v.Modified)
			}
			fixed[m.Path+" "+v.ID] = v.Fixed
		}
	}
	want := map[string]string{
		"github.com/dgrijalva/jwt-go GO-2020-0017":                  "",
		"github.com/dgrijalva/jwt-go/v4 GO-2020-0017":               "4.0.0-preview1",
		"stdlib GO-2022-0229":                                       "1.13.7",
		"golang.org/x/crypto GO-2022-0229":                          "0.0.0-20200124225646-8b5121be2f68",
		"github.com/submariner-io/submariner-operator GO-2024-2866": "",
		"stdlib GO-2026-6809":                                       "1.27.3",
	}
	if !reflect.DeepEqual(fixed, want) {
		t.Errorf("modules index (module id: fixed) =\n%v\nwant\n%v", fixed, want)
	}
	var vulns []vulnMeta
	if err := json.Unmarshal(idx.Vulns, &vulns); err != nil {
		t.Fatal(err)
	}
	if len(vulns) != 4 || vulns[0].ID != "GO-2020-0017" || vulns[3].ID != "GO-2026-6809" || len(vulns[3].Aliases) == 0 {
		t.Errorf("index/vulns.json = %s: want the four ids in order, with aliases", idx.Vulns)
	}
}

func TestBuildIndexErrors(t *testing.T) {
	files := readTestdata(t)
	for name, bad := range map[string]map[string][]byte{
		"file named after another id": {"GO-2020-0001.json": files["GO-2020-0017.json"]},
		"not JSON":                    {"GO-2020-0017.json": []byte("{")},
	} {
		if _, err := BuildIndex(bad, time.Now()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestWrite lays out a database and reads it back as govulncheck does: the
// index files and ID/<id>.json, the entries unchanged.
func TestWrite(t *testing.T) {
	files := readTestdata(t)
	idx, err := BuildIndex(files, time.Unix(0, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "db")
	if err := write(out, files, idx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{
		"index/db.json": idx.DB, "index/modules.json": idx.Modules, "index/vulns.json": idx.Vulns,
		"ID/GO-2026-6809.json": files["GO-2026-6809.json"],
	} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v, content equal: %v", name, err, bytes.Equal(got, want))
		}
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary directory is left: %v", err)
	}
}
