package sampler

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestInZone: the fast pass asks for a process snapshot at 90 % of a known
// limit and above (the v1 threshold event's level), never without a limit.
func TestInZone(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		usage, limit uint64
		want         bool
	}{
		{57 * mib, 64 * mib, false},
		{64*mib*9/10 + 1, 64 * mib, true}, // the first byte at 90 %
		{64 * mib, 64 * mib, true},
		{70 * mib, 64 * mib, true}, // a lowered limit
		{1 << 40, 0, false},        // unlimited
	} {
		assert.Equal(t, tt.want, inZone(tt.usage, tt.limit), "%d of %d", tt.usage, tt.limit)
	}
}
