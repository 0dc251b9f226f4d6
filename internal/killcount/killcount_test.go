// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package killcount

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUpdate(t *testing.T) {
	const pod, ctr, other = "/kubepods/podA", "/kubepods/podA/ctr1", "/kubepods/podA/ctr2"
	c := New()
	for i, step := range []struct {
		readings map[string]uint64
		want     []Kill
	}{
		{map[string]uint64{"/kubepods": 3, pod: 1, ctr: 1, other: 0}, nil}, // baselines
		{map[string]uint64{"/kubepods": 3, pod: 1, ctr: 2, other: 0}, []Kill{{ctr, 1}}},
		// The pod's own process and one in each container killed between
		// two readings: each cgroup's own rise, none taken from another's
		// (a parent's counter does not include its children's kills).
		{map[string]uint64{"/kubepods": 3, pod: 2, ctr: 3, other: 1}, []Kill{{pod, 1}, {ctr, 1}, {other, 1}}},
		{map[string]uint64{"/kubepods": 3, pod: 2, ctr: 0, other: 1}, nil}, // ctr recreated: new baseline
		{map[string]uint64{ctr: 2}, []Kill{{ctr, 2}}},                      // a partial reading
		{map[string]uint64{"/kubepods": 3, pod: 2, ctr: 2, other: 1}, nil}, // the others unchanged
		{map[string]uint64{"/kubepods": 4, pod: 2, ctr: 2, other: 1}, []Kill{{"/kubepods", 1}}},
	} {
		assert.Equal(t, step.want, c.Update(step.readings), "step %d", i)
	}
	c.Forget(ctr)
	assert.Nil(t, c.Update(map[string]uint64{ctr: 5}), "a forgotten cgroup read again only sets its baseline")
}
