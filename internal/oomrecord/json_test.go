// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomrecord

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/oomreport"
)

func readFile(t *testing.T, path string) []*oomreport.Report {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	reps, err := oomreport.ReadAll(f)
	require.NoError(t, err)
	return reps
}

func readString(t *testing.T, s string) []*oomreport.Report {
	t.Helper()
	reps, err := oomreport.ReadAll(strings.NewReader(s))
	require.NoError(t, err)
	return reps
}

// TestJSON: explain's JSON object for a real capture: the record's keys,
// the resource keys, the body, and the time when the log tells it.
func TestJSON(t *testing.T) {
	r := readFile(t, "../../testdata/v2/oom/pod-limit.kmsg")[0]
	b, err := JSON(r, Options{})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, float64(1392), m["process.pid"])
	assert.Equal(t, float64(437), m["linux.kmsg.seq"])
	assert.Equal(t, "dfc377c9-c533-4d51-af9e-6e0e0b3db83b", m["k8s.pod.uid"])
	assert.Equal(t, "Burstable", m["k8s.pod.qos_class"])
	assert.Equal(t, "2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc", m["container.id"])
	assert.Equal(t, "containerd", m["container.runtime.name"])
	assert.Equal(t, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope", m["cgroup.path"])
	assert.Equal(t, r.Body(), m["body"])
	assert.NotContains(t, m, "time")
	tasks := m["linux.oom.tasks"].([]any)
	assert.Equal(t, map[string]any{"pid": float64(1392), "name": "memhog", "rss": float64(11342 * 4096), "oom_score_adj": float64(0)}, tasks[0])
	assert.Equal(t, float64(45809664), m["linux.oom.memcg.stat"].(map[string]any)["anon"])

	// The keys come in the documented order.
	var keys []string
	for _, f := range append(Record(r, Options{}), Resource(r)...) {
		keys = append(keys, f.Key)
	}
	assert.Equal(t, []string{
		"process.pid", "process.executable.name", "process.user.id", "linux.oom.constraint",
		"linux.oom.global", "linux.oom.memcg", "linux.oom.task_memcg", "linux.oom.trigger.name",
		"linux.oom.trigger.pid", "linux.oom.gfp_mask", "linux.oom.order",
		"linux.oom.victim.total_vm", "linux.oom.victim.anon_rss", "linux.oom.victim.file_rss",
		"linux.oom.victim.shmem_rss", "linux.oom.victim.pgtables", "linux.oom.victim.oom_score_adj",
		"linux.oom.memcg.usage", "linux.oom.memcg.limit", "linux.oom.memcg.failcnt",
		"linux.oom.memcg.swap.usage", // v2's swap line; its limit is unlimited, so left out
		"linux.oom.memcg.stat", "linux.oom.tasks", "linux.oom.group_kill", "linux.oom.cause",
		"linux.kmsg.seq", "cgroup.path", "k8s.pod.uid", "k8s.pod.qos_class", "container.id",
		"container.runtime.name",
	}, keys)

	// Wall clock when the input has one.
	reps := readString(t, "2024-01-05T02:12:02.5+0000 host kernel: Out of memory: Killed process 7 (x) total-vm:4kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB\n")
	require.Len(t, reps, 1)
	b, err = JSON(reps[0], Options{})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"time":"2024-01-05T02:12:02.5Z"`)
	assert.Contains(t, string(b), `"linux.oom.global":true`)
}

// TestInferredAttribute: a memcg inferred from a cut report is marked so
// on the record.
func TestInferredAttribute(t *testing.T) {
	reps := readString(t, "Memory cgroup stats for /a/b: cache:0KB rss:4096KB\nMemory cgroup out of memory: Kill process 7 (app) score 1000 or sacrifice child\nKilled process 7 (app) total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB\n")
	require.Len(t, reps, 1)
	m := map[string]any{}
	for _, f := range Record(reps[0], Options{}) {
		m[f.Key] = f.Value
	}
	assert.Equal(t, "/a/b", m["linux.oom.memcg"])
	assert.Equal(t, true, m["linux.oom.memcg.inferred"])
}

// FuzzJSON: whatever text the assembler makes reports of, each renders as
// valid JSON.
func FuzzJSON(f *testing.F) {
	for _, p := range []string{"../../testdata/v2/oom/oom-group.kmsg", "../../testdata/oom/public-fragments.txt", "../../testdata/oom/v1-formats.syslog-nohost"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		reps, _ := oomreport.ReadAll(strings.NewReader(s))
		for _, r := range reps {
			b, err := JSON(r, Options{MaxTasks: 1})
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON %s", b)
			}
		}
	})
}
