// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// TestSnapshotLive: real processes started with secrets on their command
// lines in a child memory cgroup (more of them than a record keeps) are
// all listed by `oomsight snapshot`, in text and JSON, with every secret
// hidden and the ordinary arguments kept; name and off keep less.
func TestSnapshotLive(t *testing.T) {
	env := cgrouptest.Require(t)
	memhog := cgrouptest.BuildMemhog(t)
	cg := env.NewCgroup(t, "kubepods/burstable/podsnap/ctr")
	sub := env.NewCgroup(t, "kubepods/burstable/podsnap/ctr/sidecar") // a descendant is read too
	workers := [][]string{
		{"redis-cli", "-h", "cache", "-a", "Rd1sPassw0rd", "ping"},
		{"--worker=thumbnailer", "--db-password=hunter2"},
		{"mysql", "-uroot", "-pr00tDump", "shop"},
		{"--dsn=appuser:goDsnPw1@tcp(db:3306)/orders"},
		{"curl", "-u", "me:curlBasicPw1", "-H", "PRIVATE-TOKEN: glTokenXyz12", "https://gitlab.example.com/api"},
		{"psql", "host=db password=libpqConnPw dbname=x"},
		{"aws", "configure", "set", "aws_secret_access_key", "wJalrXUtnFEMIK7MDENG"},
		{"--queue=images", "--max-num-batched-tokens", "8192"},
		{"--keyspace=orders"},
		{"--authorization-mode=Node,RBAC"},
		{"--job=nightly"},
		{"--job=hourly"},
	}
	secrets := []string{"Rd1sPassw0rd", "hunter2", "r00tDump", "goDsnPw1", "curlBasicPw1", "glTokenXyz12", "libpqConnPw", "wJalrXUtnFEMIK7MDENG"}
	pids := map[int64]bool{}
	for i, args := range workers {
		c := cg
		if i == len(workers)-1 {
			c = sub
		}
		pids[int64(c.Start(t, memhog, args...).Pid)] = true
	}

	var out, errOut bytes.Buffer
	code := run([]string{"snapshot", "--format", "json", "--root", "/sys/fs/cgroup", cg.Path}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	var got struct {
		Cgroup    string `json:"cgroup.path"`
		Capture   string `json:"command_line"`
		Seen      int    `json:"seen"`
		Processes []struct {
			PID     int64  `json:"pid"`
			Name    string `json:"name"`
			Cmdline string `json:"cmdline"`
			RSSAnon int64  `json:"rss_anon"`
		} `json:"processes"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	assert.Equal(t, cg.Path, got.Cgroup)
	assert.Equal(t, "redacted", got.Capture)
	assert.Equal(t, len(workers), got.Seen)
	require.Len(t, got.Processes, len(workers), "every process, not the %d a record keeps", 10)
	for _, p := range got.Processes {
		assert.True(t, pids[p.PID], "pid %d is one of ours", p.PID)
		assert.Equal(t, "memhog", p.Name)
		assert.True(t, strings.HasPrefix(p.Cmdline, memhog+" "), p.Cmdline)
		assert.Positive(t, p.RSSAnon)
	}
	for _, s := range secrets {
		assert.NotContains(t, out.String(), s)
	}
	for _, kept := range []string{
		"--max-num-batched-tokens 8192", "--keyspace=orders", "--authorization-mode=Node,RBAC", "redis-cli -h cache -a *** ping",
		"mysql -uroot -p*** shop", "curl -u me:*** -H PRIVATE-TOKEN: *** https://gitlab.example.com/api", "aws_secret_access_key ***",
	} {
		assert.Contains(t, out.String(), kept)
	}

	out.Reset()
	require.Equal(t, 0, run([]string{"snapshot", cg.Path, "--root", "/sys/fs/cgroup"}, nil, &out, io.Discard))
	text := out.String()
	for pid := range pids {
		assert.Contains(t, text, fmt.Sprintf("\n%d ", pid))
	}
	for _, s := range secrets {
		assert.NotContains(t, text, s)
	}
	assert.Contains(t, text, fmt.Sprintf("%d processes listed of %d", len(workers), len(workers)))

	out.Reset()
	require.Equal(t, 0, run([]string{"snapshot", "--command-line", "name", "--format", "json", cg.Path}, nil, &out, io.Discard))
	assert.NotContains(t, out.String(), "--", "name keeps the process name only, as the record's cmdline")
	assert.Contains(t, out.String(), `"cmdline": "memhog"`)
	out.Reset()
	require.Equal(t, 0, run([]string{"snapshot", "--command-line", "off", "--format", "json", cg.Path}, nil, &out, io.Discard))
	assert.NotContains(t, out.String(), "memhog")

	// A path that climbs out of the hierarchy stays in it (and is missing).
	errOut.Reset()
	assert.Equal(t, 1, run([]string{"snapshot", "/../../../etc"}, nil, io.Discard, &errOut))
	assert.Contains(t, errOut.String(), "cgroup /etc not found")
}
