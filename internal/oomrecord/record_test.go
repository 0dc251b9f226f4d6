package oomrecord

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/oomreport"
)

// captures reads every OOM capture of testdata.
func captures(t *testing.T) map[string][]*oomreport.Report {
	t.Helper()
	out := map[string][]*oomreport.Report{}
	for _, glob := range []string{"../../testdata/oom/*", "../../testdata/v2/oom/*"} {
		paths, err := filepath.Glob(glob)
		require.NoError(t, err)
		for _, p := range paths {
			if st, err := os.Stat(p); err != nil || st.IsDir() {
				continue
			}
			f, err := os.Open(p)
			require.NoError(t, err)
			reps, err := oomreport.ReadAll(f)
			f.Close()
			require.NoError(t, err, p)
			out[p] = reps
		}
	}
	require.NotEmpty(t, out)
	return out
}

// TestSameAsReportFields: the table renders every capture's reports as
// oomreport's own Fields did, key for key and value for value.
func TestSameAsReportFields(t *testing.T) {
	n := 0
	for p, reps := range captures(t) {
		for _, r := range reps {
			for _, max := range []int{0, 1, -1} {
				r.MaxTasks = max
				var want []Field
				for _, f := range r.Fields() {
					if v, ok := f.Value.(int); ok {
						f.Value = int64(v) // the omitted count, int64 like every count now
					}
					want = append(want, Field{f.Key, f.Value})
				}
				assert.Equal(t, want, append(Record(r, Options{MaxTasks: max}), Resource(r)...), "%s pid %d", p, r.PID)
				n++
			}
		}
	}
	assert.Greater(t, n, 30)
}
