//go:build linux

package cgroupmemoryreceiver

import (
	"sync"
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/killcount"
	"github.com/oomsight/oomsight/internal/registry"
)

const (
	// killMemory is how long counted kills are remembered for attributing
	// a rate-limited kill line.
	killMemory = time.Minute
	// inferWithin is how close to a cgroup-less kill line a counted kill
	// must be to be attributed to it.
	inferWithin = 10 * time.Second
	// oomScanDelay: a v1 OOM notification comes before the kill; the
	// counters are read this long after it.
	oomScanDelay = 100 * time.Millisecond
)

// counted is one cgroup's rise of its oom_kill counter.
type counted struct {
	path    string
	at      time.Time
	n       uint64
	claimed uint64 // kills of it explained by kernel reports
}

// killWatch books the kills the cgroups' oom_kill counters show (see package
// killcount), so that a kill line without a cgroup (the kernel rate-limited
// its report) can be attributed, and, while the kernel log cannot be read,
// every counted kill still becomes a record.
type killWatch struct {
	reg *registry.Registry

	mu       sync.Mutex
	counter  *killcount.Counter
	reader   *cgroupfs.Reader
	sample   cgroupfs.Sample
	readings map[string]uint64
	recent   []counted
	// emit, while set, turns every counted kill into a record (the kernel
	// log is unavailable). It is called without mu held.
	emit func(counted)
	now  func() time.Time
}

func newKillWatch(reg *registry.Registry) *killWatch {
	return &killWatch{
		reg:      reg,
		counter:  killcount.New(),
		reader:   cgroupfs.NewReader(),
		readings: make(map[string]uint64),
		now:      time.Now,
	}
}

// setEmit sets (or, with nil, clears) the emitter of counter-based records.
func (k *killWatch) setEmit(emit func(counted)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.emit = emit
}

// book takes counter readings taken together at `at`.
func (k *killWatch) book(readings map[string]uint64, at time.Time) {
	k.mu.Lock()
	fresh, emit := k.bookLocked(readings, at)
	k.mu.Unlock()
	send(fresh, emit)
}

func (k *killWatch) bookLocked(readings map[string]uint64, at time.Time) ([]counted, func(counted)) {
	kills := k.counter.Update(readings)
	cut := at.Add(-killMemory)
	i := 0
	for i < len(k.recent) && k.recent[i].at.Before(cut) {
		i++
	}
	k.recent = append(k.recent[:0], k.recent[i:]...)
	var fresh []counted
	for _, kl := range kills {
		c := counted{path: kl.Path, at: at, n: kl.N}
		k.recent = append(k.recent, c)
		fresh = append(fresh, c)
	}
	return fresh, k.emit
}

func send(fresh []counted, emit func(counted)) {
	if emit == nil {
		return
	}
	for _, c := range fresh {
		emit(c)
	}
}

// bookOne takes one cgroup's reading (a v2 event: memory.events.local is
// the cgroup's own, so a partial reading is exact).
func (k *killWatch) bookOne(path string, oomKills uint64, at time.Time) {
	k.book(map[string]uint64{path: oomKills}, at)
}

// scan reads every cgroup's counter now and books the rises.
func (k *killWatch) scan() {
	entries := k.reg.Entries(nil) // before k.mu: the registry calls forget under its lock
	k.mu.Lock()
	clear(k.readings)
	for _, e := range entries {
		if err := k.reader.Counters(e.Cgroup, &k.sample); err != nil {
			continue
		}
		if v, ok := k.sample.Get(cgroupfs.OOMKills); ok {
			k.readings[e.Path] = v
		}
	}
	fresh, emit := k.bookLocked(k.readings, k.now())
	k.mu.Unlock()
	send(fresh, emit)
}

// forget drops a cgroup that left.
func (k *killWatch) forget(path string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counter.Forget(path)
}

// claim marks one counted kill of path (or of its nearest counted
// ancestor: the victim's own cgroup may not be watched) as explained by a
// kernel report.
func (k *killWatch) claim(path string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	best := -1
	for i := len(k.recent) - 1; i >= 0; i-- {
		c := &k.recent[i]
		if c.claimed >= c.n || c.path != path && !isAncestorPath(c.path, path) {
			continue
		}
		if best < 0 || len(c.path) > len(k.recent[best].path) {
			best = i
		}
	}
	if best >= 0 {
		k.recent[best].claimed++
	}
}

// infer attributes a kill line without a cgroup, printed at `at`, to the
// cgroup whose counter rose then: the counters are read at once (the kernel
// raises the counter before it prints the kill line), and the newest
// unexplained counted kill within inferWithin is claimed.
func (k *killWatch) infer(at time.Time) (string, bool) {
	k.scan()
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := len(k.recent) - 1; i >= 0; i-- {
		c := &k.recent[i]
		d := c.at.Sub(at)
		if c.claimed < c.n && d > -inferWithin && d < inferWithin {
			c.claimed++
			return c.path, true
		}
	}
	return "", false
}

func isAncestorPath(a, b string) bool {
	if a == "/" {
		return b != "/"
	}
	return len(b) > len(a) && b[:len(a)] == a && b[len(a)] == '/'
}
