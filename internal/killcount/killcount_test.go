package killcount

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUpdate(t *testing.T) {
	const pod, ctr, other = "/kubepods/podA", "/kubepods/podA/ctr1", "/kubepods/podA/ctr2"
	for _, tc := range []struct {
		name         string
		hierarchical bool
		steps        []map[string]uint64
		want         [][]Kill
	}{
		{
			name:         "v1: a kill in a container raises the pod and kubepods too",
			hierarchical: true,
			steps: []map[string]uint64{
				{"/kubepods": 3, pod: 1, ctr: 1, other: 0},
				{"/kubepods": 4, pod: 2, ctr: 2, other: 0},
				{"/kubepods": 7, pod: 4, ctr: 3, other: 1}, // one in each container, one more elsewhere in kubepods
				{"/kubepods": 8, pod: 5, ctr: 3, other: 1}, // the pod's own process
				{"/kubepods": 8, pod: 5, ctr: 0, other: 1}, // ctr recreated: new baseline
				{"/kubepods": 9, pod: 6, ctr: 1, other: 1}, // and killed
			},
			want: [][]Kill{
				nil,
				{{ctr, 1}},
				{{ctr, 1}, {other, 1}, {"/kubepods", 1}},
				{{pod, 1}},
				nil,
				{{ctr, 1}},
			},
		},
		{
			name: "v2: memory.events.local counts each cgroup's own",
			steps: []map[string]uint64{
				{pod: 0, ctr: 0},
				{pod: 0, ctr: 2},
				{ctr: 3}, // a partial reading (an event on one cgroup)
			},
			want: [][]Kill{nil, {{ctr, 2}}, {{ctr, 1}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.hierarchical)
			for i, r := range tc.steps {
				assert.Equal(t, tc.want[i], c.Update(r), "step %d", i)
			}
		})
	}
}
