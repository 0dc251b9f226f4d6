// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// namesFixture is the real capture of processes that named themselves
// with terminal escapes, a newline and the kill line's own words, each
// OOM-killed (receiver's TestHostileNamesRealKills).
const namesFixture = "../../testdata/oom/v1-hostile-names.kmsg"

// terminalDanger matches what a terminal acts on: C0 controls but the
// newline that ends explain's own lines, DEL, C1 controls, bidi controls.
var terminalDanger = regexp.MustCompile("[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

// TestExplainTextEscapesNames: explain's text output of the capture shows
// every name's control bytes as visible escapes (\x1b), never raw, and
// each name's newline as \x0a inside its own line; one block per kill.
func TestExplainTextEscapesNames(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"explain", namesFixture}, nil, &out, &errOut), errOut.String())
	text := out.String()
	assert.NotRegexp(t, terminalDanger, text)
	for _, want := range []string{
		`Process m\x0aevil (pid 24140) in container 0dc1822caf9e of pod 0f5eb28f was OOM-killed`,
		`Process m\x1b[2J (pid 24227) in container`,
		`Process \x1b]0;owned\x07 (pid 24294) in container`,
		`Process mem)hog (pid 24361)`,
		`Process mem(hog (pid 24421)`,
		`Process , UID 0, (pid 24504)`,
		`Process Killed process  (pid 24572)`,
		"  process.executable.name:         m\\x1b[2J\n",
		"  linux.oom.trigger.name:          \\x1b]0;owned\\x07\n",
		" m\\x0aevil",
	} {
		assert.Contains(t, text, want)
	}
	assert.Equal(t, 7, strings.Count(text, " was OOM-killed"), "one block per kill")
}

// TestExplainJSONKeepsNames: the JSON output keeps each name's exact
// bytes (JSON escapes the control characters itself).
func TestExplainJSONKeepsNames(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"explain", "--format", "json", namesFixture}, nil, &out, &errOut), errOut.String())
	var names []string
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var obj map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &obj))
		names = append(names, obj["process.executable.name"].(string))
		assert.NotRegexp(t, terminalDanger, obj["body"], "the body is the sentence, escaped")
	}
	assert.Equal(t, []string{"m\nevil", "m\x1b[2J", "\x1b]0;owned\x07", "mem)hog", "mem(hog", ", UID 0,", "Killed process "}, names)
	assert.NotRegexp(t, terminalDanger, out.String(), "JSON itself escapes control characters")
}
