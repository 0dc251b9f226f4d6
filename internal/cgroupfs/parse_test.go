// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// v1Container is a real cgroup v1 container cgroup captured on this
// project's CI kernel (testdata/capture/v1/capture.sh).
const v1Container = "../../testdata/v1/root/memory/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"

func readFixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestParseUint(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr string
	}{
		{in: "44699648\n", want: 44699648},
		{in: "0\n", want: 0},
		{in: "18446744073709551615\n", want: 1<<64 - 1},
		{in: "18446744073709551616\n", wantErr: "out of range"},
		{in: "", wantErr: "empty"},
		{in: "\n", wantErr: "empty"},
		{in: "-1\n", wantErr: "not an unsigned number"},
		{in: "12kB\n", wantErr: "not an unsigned number"},
	} {
		got, err := ParseUint([]byte(tc.in))
		if tc.wantErr != "" {
			assert.ErrorContains(t, err, tc.wantErr, "input %q", tc.in)
			continue
		}
		require.NoError(t, err, "input %q", tc.in)
		assert.Equal(t, tc.want, got, "input %q", tc.in)
	}
}

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		limited bool
		wantErr bool
	}{
		{in: "max\n"},                                     // v2 unlimited
		{in: "9223372036854771712\n"},                     // v1 unlimited, 4 KiB pages (this kernel)
		{in: "9223372036854710272\n"},                     // v1 unlimited, 64 KiB pages
		{in: "67108864\n", want: 67108864, limited: true}, // 64 MiB
		{in: "0\n", want: 0, limited: true},
		{in: "maximum\n", wantErr: true},
	} {
		v, limited, err := ParseLimit([]byte(tc.in))
		if tc.wantErr {
			assert.Error(t, err, "input %q", tc.in)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.limited, limited, "input %q", tc.in)
		assert.Equal(t, tc.want, v, "input %q", tc.in)
	}
	// The real unlimited value this kernel prints for a cgroup without a
	// limit is recognized.
	v, limited, err := ParseLimit(readFixture(t, "../../testdata/v1/root/memory/kubepods/memory.limit_in_bytes"))
	require.NoError(t, err)
	assert.False(t, limited, "kubepods has no limit in the fixture (read %d)", v)
}

func TestKeyValuesRealV1Stat(t *testing.T) {
	b := readFixture(t, filepath.Join(v1Container, "memory.stat"))
	m, err := ParseKeyValues(b)
	require.NoError(t, err)
	// Every line of the real file becomes one key.
	assert.Len(t, m, strings.Count(strings.TrimSpace(string(b)), "\n")+1)
	for _, k := range []string{"total_rss", "total_cache", "total_shmem", "total_active_file", "total_inactive_file", "hierarchical_memory_limit"} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, uint64(64<<20), m["hierarchical_memory_limit"])
}

func TestKeyValuesMalformed(t *testing.T) {
	for _, in := range []string{
		"anon\n",                      // no value
		"anon 12 34\n",                // two values
		"anon -5\n",                   // negative
		" 12\n",                       // no key
		"anon 1\nfile x\n",            // second line bad
		"anon 99999999999999999999\n", // overflow
	} {
		_, err := ParseKeyValues([]byte(in))
		assert.Error(t, err, "input %q", in)
	}
	// A malformed line is skipped, not the end: the lines after it count.
	m, err := ParseKeyValues([]byte("anon 1\nfile x\nshmem 3\nbad\n"))
	require.ErrorContains(t, err, "line 2: key file")
	require.ErrorContains(t, err, "and 1 more malformed lines skipped")
	assert.Equal(t, map[string]uint64{"anon": 1, "shmem": 3}, m)

	// Blank lines and a missing final newline are fine.
	m, err = ParseKeyValues([]byte("anon 1\n\nfile 2"))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"anon": 1, "file": 2}, m)
}

// TestParsePressure parses every PSI file captured from the v2 VM and
// checks each line against an independent reading with strconv.
func TestParsePressure(t *testing.T) {
	files, err := filepath.Glob("../../testdata/v2/oom/*/cgroupfs/*/*/*/*/memory.pressure")
	require.NoError(t, err)
	more, err := filepath.Glob("../../testdata/v2/oom/*/cgroupfs/*/*/*/memory.pressure")
	require.NoError(t, err)
	files = append(files, more...)
	require.GreaterOrEqual(t, len(files), 4, "captured memory.pressure files")
	nonzero := 0
	for _, f := range files {
		b := readFixture(t, f)
		p, perr := ParsePressure(b)
		require.NoError(t, perr, f)
		require.True(t, p.HasSome, f)
		require.True(t, p.HasFull, f)
		for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
			fields := strings.Fields(line)
			avg, perr := strconv.ParseFloat(strings.TrimPrefix(fields[1], "avg10="), 64)
			require.NoError(t, perr)
			total, perr := strconv.ParseUint(strings.TrimPrefix(fields[4], "total="), 10, 64)
			require.NoError(t, perr)
			got := p.Some
			if fields[0] == "full" {
				got = p.Full
			}
			assert.Equal(t, uint64(math.Round(avg*100)), got.Avg10, "%s: %s", f, line)
			assert.Equal(t, total, got.Total, "%s: %s", f, line)
			if got.Avg10 > 0 {
				nonzero++
			}
		}
	}
	assert.Positive(t, nonzero, "no captured file with a non-zero avg10: the test would not see a wrong scale")

	for _, bad := range []string{"some avg10=0.00\n", "some avg10=0.00 total=x\n", "some total=1\n", "some avg10=1.5 total=1\n"} {
		_, err = ParsePressure([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestKeyValuesDoesNotAllocate(t *testing.T) {
	b := readFixture(t, filepath.Join(v1Container, "memory.stat"))
	var s Sample
	allocs := testing.AllocsPerRun(100, func() {
		if err := v1Stat(b, &s); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

func FuzzKeyValues(f *testing.F) {
	for _, p := range []string{
		"../../testdata/v1/root/memory/kubepods/memory.stat",
		"../../testdata/v1/root/memory/kubepods/memory.oom_control",
		"../../testdata/v2/cgroupfs/kubepods/memory.stat",
		"../../testdata/v2/cgroupfs/kubepods/memory.events.local",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("anon 1\nfile 2\n"))
	f.Add([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"))
	f.Add([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseKeyValues(b)
		if err == nil {
			for k := range m {
				if k == "" || strings.ContainsAny(k, " \n") {
					t.Fatalf("bad key %q from %q", k, b)
				}
			}
		}
		// With a prefix: only keys that have it, each one a key of the
		// whole file too.
		kv := KeyValues{Data: b, Prefix: "total_"}
		for kv.Next() {
			k := string(kv.Key())
			if !strings.HasPrefix(k, "total_") {
				t.Fatalf("key %q without the prefix from %q", k, b)
			}
			if _, ok := m[k]; !ok {
				t.Fatalf("key %q not among the whole file's keys from %q", k, b)
			}
		}
		var s Sample
		_ = v1Stat(b, &s)
		_ = v2Stat(b, &s)
		_ = v2Events(b, &s)
		_ = pressure(b, &s)
		_, _, _ = ParseLimit(b)
	})
}

// TestKeyValuesPrefix: with a Prefix, the other lines are not returned but
// are still checked for shape.
func TestKeyValuesPrefix(t *testing.T) {
	kv := KeyValues{Data: []byte("rss 1\ntotal_rss 2\ncache x\ntotal 5\ntotal_cache 3\n"), Prefix: "total_"}
	got := map[string]uint64{}
	for kv.Next() {
		got[string(kv.Key())] = kv.Value()
	}
	assert.Equal(t, map[string]uint64{"total_rss": 2, "total_cache": 3}, got)
	assert.ErrorContains(t, kv.Err(), `line 3: key cache: not an unsigned number: "x"`)
}
