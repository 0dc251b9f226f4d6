package recorder

import (
	"fmt"
	"strings"
	"time"
)

// Samplers are the collection periods whose view of a kill the climb
// sentence states: the kubelet's and cAdvisor's 10 s, cloud monitoring's
// 60 s.
var Samplers = []time.Duration{10 * time.Second, 60 * time.Second}

// Climb is one sentence on how usage reached the kill at end (unix ns):
// how fast it rose, and what a sampler at each of Samplers last saw before
// the kill — the number on everyone's dashboard. top is the usage at the
// kill when the kernel's report tells it (0: the highest recorded).
// bytes formats an amount. Without history it returns "".
func (h History) Climb(end int64, top uint64, bytes func(int64) string) string {
	n := len(h.Usage)
	if n == 0 {
		return ""
	}
	endMs := end / int64(time.Millisecond)
	if top == 0 {
		for _, v := range h.Usage {
			top = max(top, v)
		}
	}
	var b strings.Builder
	// The climb starts at the last point at or below half the top.
	from := -1
	for i := n - 1; i >= 0; i-- {
		if h.Usage[i] <= top/2 {
			from = i
			break
		}
	}
	if from >= 0 {
		fmt.Fprintf(&b, "usage climbed from %s to %s in %s", bytes(signed(h.Usage[from])), bytes(signed(top)), seconds(endMs-h.T[from]))
	} else {
		low := top
		for _, v := range h.Usage {
			low = min(low, v)
		}
		fmt.Fprintf(&b, "usage stayed between %s and %s for the %s recorded before the kill", bytes(signed(low)), bytes(signed(top)), seconds(endMs-h.T[0]))
	}
	sep := "; "
	for _, p := range Samplers {
		at := endMs - endMs%p.Milliseconds() // the sampler's last tick before the kill
		i := lastAtOrBefore(h.T, at)
		if i < 0 {
			continue // the recorder does not reach back that far
		}
		fmt.Fprintf(&b, "%sa %s sampler last saw %s", sep, seconds(p.Milliseconds()), bytes(signed(h.Usage[i])))
		sep = ", "
	}
	return b.String()
}

func lastAtOrBefore(ts []int64, at int64) int {
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i] <= at {
			return i
		}
	}
	return -1
}

// signed converts a byte amount for bytes; no memory amount reaches 2^63.
func signed(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

// seconds prints a duration in ms as "0.8 s", "12 s".
func seconds(ms int64) string {
	if ms < 10000 {
		return fmt.Sprintf("%.1f s", float64(ms)/1000)
	}
	return fmt.Sprintf("%d s", (ms+500)/1000)
}
