// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOverflowRejected: a number that does not fit (past int64, or
// overflowing when kB or pages become bytes, or a pid above PID_MAX_LIMIT)
// is rejected with a ParseError and left out of the report; on main
// (a46aa0a) it wrapped to a negative size or saturated to
// 9223372036854775807. Each case is a real capture with one number edited.
func TestOverflowRejected(t *testing.T) {
	const (
		group  = "../../testdata/v2/oom/oom-group.kmsg"
		global = "../../testdata/v2/oom/global.kmsg"
		old414 = "../../testdata/oom/public-fragments.txt" // the 4.14 (TKE) fragment's one-line stat dump
	)
	// 2^53 kB is 2^63 bytes: one past int64. 2^63 is one past int64 itself.
	const kB2to63, over = "9007199254740992", "9223372036854775808"
	for name, c := range map[string]struct {
		file, old, new string
		field          string // the ParseError's
		check          func(t *testing.T, reps []*Report)
	}{
		"kill line anon-rss kB × 1024": {group, "Killed process 1680 (memhog) total-vm:1281196kB, anon-rss:54028kB", "Killed process 1680 (memhog) total-vm:1281196kB, anon-rss:" + kB2to63 + "kB", "anon-rss", func(t *testing.T, reps []*Report) {
			r := byPID(t, reps, 1680)
			assert.Nil(t, r.AnonRSS)
			assert.Equal(t, int64(1281196*1024), *r.TotalVM, "the line's other values stay")
		}},
		"kill line total-vm past int64": {global, "total-vm:1640620kB", "total-vm:" + over + "kB", "total-vm", func(t *testing.T, reps []*Report) {
			assert.Nil(t, byPID(t, reps, 2530).TotalVM)
		}},
		"kill line pgtables kB × 1024": {global, "pgtables:892kB", "pgtables:" + kB2to63 + "kB", "pgtables", func(t *testing.T, reps []*Report) {
			assert.Nil(t, byPID(t, reps, 2530).PgTables)
		}},
		"kill line pid: 20 digits": {global, "Killed process 2530 (memhog)", "Killed process 18446744073709551616 (memhog)", "kill line pid", func(t *testing.T, reps []*Report) {
			// The kill line is no kill; the oom-kill: summary still names
			// the victim (reported as a kill whose line never came).
			for _, r := range reps {
				assert.NotEqual(t, 1<<63-1, r.PID)
			}
		}},
		"kill line pid above PID_MAX_LIMIT": {global, "Killed process 2530 (memhog)", "Killed process 4194305 (memhog)", "kill line pid", nil},
		"kill line UID": {global, "UID:0 pgtables:892kB", "UID:" + over + " pgtables:892kB", "UID", func(t *testing.T, reps []*Report) {
			// The oom-kill: summary's uid=0 stands in.
			assert.Equal(t, int64(0), *byPID(t, reps, 2530).UID)
		}},
		"oom-kill summary pid": {global, ",pid=2530,uid=0", ",pid=" + over + ",uid=0", "oom-kill pid", nil},
		"trigger pid": {global, "CPU: 0 PID: 2530 Comm: memhog", "CPU: 0 PID: " + over + " Comm: memhog", "trigger pid", func(t *testing.T, reps []*Report) {
			assert.Nil(t, byPID(t, reps, 2530).TriggerPID)
		}},
		"memcg usage kB × 1024": {group, "memory: usage 65536kB, limit 65536kB, failcnt 32", "memory: usage " + kB2to63 + "kB, limit 65536kB, failcnt 32", "memory usage", func(t *testing.T, reps []*Report) {
			r := byPID(t, reps, 1680)
			assert.Nil(t, r.MemcgUsage)
			assert.Equal(t, int64(65536*1024), *r.MemcgLimit)
		}},
		"memcg failcnt": {group, "limit 65536kB, failcnt 32", "limit 65536kB, failcnt " + over, "failcnt", func(t *testing.T, reps []*Report) {
			assert.Nil(t, byPID(t, reps, 1680).MemcgFailcnt)
		}},
		"memcg limit past int64": {group, "limit 65536kB, failcnt 32", "limit " + over + "kB, failcnt 32", "memory limit", func(t *testing.T, reps []*Report) {
			assert.Nil(t, byPID(t, reps, 1680).MemcgLimit)
		}},
		"stat dump counter": {group, `anon 66551808\x0afile`, `anon ` + over + `\x0afile`, "stat anon", func(t *testing.T, reps []*Report) {
			r := byPID(t, reps, 1680)
			assert.NotContains(t, r.MemcgStat, "anon")
			assert.Equal(t, int64(4096), r.MemcgStat["file"])
		}},
		"task table rss pages × 4096": {group, "320299    13718   192512", "320299    " + kB2to63 + "   192512", "task table rss", func(t *testing.T, reps []*Report) {
			r := byPID(t, reps, 1680)
			for _, row := range r.Tasks {
				assert.NotEqual(t, int64(1680), row.PID, "the row is rejected")
				assert.GreaterOrEqual(t, row.RSS, int64(0))
			}
		}},
		"task table pid": {group, "[   1674]     0  1674", "[" + over + "]     0  1674", "task table pid", nil},
		"pages RAM × 4096": {global, "130942 pages RAM", kB2to63 + " pages RAM", "pages RAM", func(t *testing.T, reps []*Report) {
			assert.Nil(t, byPID(t, reps, 2530).RAM)
		}},
		"one-line stat dump KB × 1024": {old414, "rss:0KB rss_huge", "rss:" + kB2to63 + "KB rss_huge", "stat rss (KB)", nil},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(c.file)
			require.NoError(t, err)
			require.Equal(t, 1, strings.Count(string(raw), c.old), "the edited text must occur once in %s", c.file)
			var errs []*ParseError
			reps, err := ReadAll(strings.NewReader(strings.Replace(string(raw), c.old, c.new, 1)),
				WithParseErrors(func(e *ParseError) { errs = append(errs, e) }))
			require.NoError(t, err)
			require.Len(t, errs, 1, "one rejected value")
			assert.Equal(t, c.field, errs[0].Field)
			assert.Contains(t, errs[0].Error(), "rejected")
			for _, r := range reps {
				assertNoNegative(t, r)
			}
			if c.check != nil {
				c.check(t, reps)
			}
		})
	}
}

func byPID(t *testing.T, reps []*Report, pid int) *Report {
	t.Helper()
	for _, r := range reps {
		if r.PID == pid {
			return r
		}
	}
	require.Failf(t, "no report", "for pid %d", pid)
	return nil
}

// assertNoNegative: no size of a report is negative (a wrapped value).
func assertNoNegative(t *testing.T, r *Report) {
	t.Helper()
	for _, v := range []*int64{r.TotalVM, r.AnonRSS, r.FileRSS, r.ShmemRSS, r.PgTables, r.MemcgUsage, r.MemcgLimit, r.MemcgFailcnt, r.RAM, r.TriggerPID, r.UID} {
		if v != nil {
			assert.GreaterOrEqual(t, *v, int64(0))
		}
	}
	assert.GreaterOrEqual(t, r.PID, 0)
	assert.Less(t, r.PID, 1<<63-1)
	for k, v := range r.MemcgStat {
		assert.GreaterOrEqual(t, v, int64(0), k)
	}
}

// TestStatKeysBounded: a stat dump of more counters than any kernel prints
// keeps maxStatKeys and reports the rest once.
func TestStatKeysBounded(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/v2/oom/oom-group.kmsg")
	require.NoError(t, err)
	// The capture's own stat lines, repeated under other counter names.
	var extra strings.Builder
	for i := range 2 * maxStatKeys {
		extra.WriteString(`\x0aanon_` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + ` 66551808`)
	}
	in := strings.Replace(string(raw), `anon 66551808\x0a`, `anon 66551808`+extra.String()+`\x0a`, 1)
	var errs []*ParseError
	reps, err := ReadAll(strings.NewReader(in), WithParseErrors(func(e *ParseError) { errs = append(errs, e) }))
	require.NoError(t, err)
	assert.Len(t, byPID(t, reps, 1680).MemcgStat, maxStatKeys)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Reason, "counters")
}
