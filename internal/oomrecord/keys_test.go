// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomrecord

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metadata is what metadata.yaml says of the OOM record's keys.
type metadata struct {
	types    map[string]string // attributes: key → type
	resource map[string]string // resource_attributes: key → type
	event    []string          // events.linux.oom_kill.attributes, in order
}

// readMetadata reads the receiver's metadata.yaml (the file mdatagen
// generates the receiver's builders from) line by line: its layout is
// mdatagen's, two spaces per level.
func readMetadata(t *testing.T) metadata {
	t.Helper()
	f, err := os.Open("../../receiver/cgroupmemoryreceiver/metadata.yaml")
	require.NoError(t, err)
	defer f.Close()
	md := metadata{types: map[string]string{}, resource: map[string]string{}}
	var section, key, sub string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		indent := len(line) - len(strings.TrimLeft(line, " "))
		text := strings.TrimSpace(line)
		switch {
		case text == "" || strings.HasPrefix(text, "#"):
		case indent == 0:
			section, key, sub = strings.TrimSuffix(text, ":"), "", ""
		case indent == 2:
			key, sub = strings.TrimSuffix(text, ":"), ""
		case indent == 4:
			sub = strings.TrimSuffix(text, ":")
			if v, ok := strings.CutPrefix(text, "type: "); ok {
				switch section {
				case "attributes":
					md.types[key] = v
				case "resource_attributes":
					md.resource[key] = v
				}
			}
		case indent == 6 && section == "events" && key == "linux.oom_kill" && sub == "attributes":
			if v, ok := strings.CutPrefix(text, "- "); ok {
				md.event = append(md.event, v)
			}
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, md.event, "events.linux.oom_kill.attributes not found")
	return md
}

// TestKeysMatchMetadata: the key table is metadata.yaml's linux.oom_kill
// event, key for key, in its order and with its types; the resource keys
// are its resource attributes.
func TestKeysMatchMetadata(t *testing.T) {
	md := readMetadata(t)
	var names []string
	for _, k := range Attributes {
		names = append(names, k.Name)
		assert.Equal(t, md.types[k.Name], k.Type, "type of %s", k.Name)
	}
	assert.Equal(t, md.event, names)
	var resource []string
	for _, k := range ResourceKeys {
		resource = append(resource, k.Name)
		assert.Equal(t, md.resource[k.Name], k.Type, "type of %s", k.Name)
	}
	assert.ElementsMatch(t, keysOf(md.resource), resource)
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
