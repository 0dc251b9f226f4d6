package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{args: []string{"version"}, code: 0, out: "oomsight 0.1.0 (go"},
		{args: []string{"help"}, code: 0, out: "usage: oomsight"},
		{args: nil, code: 2, errOut: "usage: oomsight"},
		{args: []string{"frobnicate"}, code: 2, errOut: `unknown command "frobnicate"`},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		assert.Equal(t, tc.code, code, "%v", tc.args)
		if tc.out != "" {
			assert.True(t, strings.HasPrefix(out.String(), tc.out), "%v: %q", tc.args, out.String())
		}
		if tc.errOut != "" {
			assert.Contains(t, errOut.String(), tc.errOut, "%v", tc.args)
		}
	}
}
