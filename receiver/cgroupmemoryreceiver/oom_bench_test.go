// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// monotonic reads CLOCK_MONOTONIC.
func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// kernelClock measures CLOCK_MONOTONIC − the kernel log's clock right now,
// to the microsecond: a marker written to /dev/kmsg is stamped during the
// write(2), which CLOCK_MONOTONIC readings bracket. The benchmark dates
// kill lines with it, independently of how the receiver dates them.
func kernelClock(b *testing.B) time.Duration {
	r, err := kmsg.Open("/dev/kmsg")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if err := r.SeekEnd(); err != nil {
		b.Fatal(err)
	}
	marker := fmt.Sprintf("oomsight-bench-clock %d", time.Now().UnixNano())
	before := monotonic()
	if err := os.WriteFile("/dev/kmsg", []byte(marker+"\n"), 0); err != nil {
		b.Fatal(err)
	}
	after := monotonic()
	for {
		rec, err := r.Next()
		if errors.Is(err, os.ErrClosed) {
			b.Fatal("marker not found")
		}
		if err == nil && strings.Contains(rec.Message, marker) {
			return (before+after)/2 - rec.Monotonic
		}
	}
}

// killLines collects the kernel timestamps of "Killed process" records by
// sequence number, read with a reader of the benchmark's own.
type killLines struct {
	mu sync.Mutex
	ts map[int64]time.Duration
}

func watchKillLines(b *testing.B) *killLines {
	r, err := kmsg.Open("/dev/kmsg")
	if err != nil {
		b.Fatal(err)
	}
	if err := r.SeekEnd(); err != nil {
		b.Fatal(err)
	}
	k := &killLines{ts: map[int64]time.Duration{}}
	go func() {
		for {
			rec, err := r.Next()
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if err == nil && strings.Contains(rec.Message, "Killed process") {
				k.mu.Lock()
				k.ts[int64(rec.Seq)] = rec.Monotonic
				k.mu.Unlock()
			}
		}
	}()
	b.Cleanup(func() { r.Close() })
	return k
}

func (k *killLines) get(seq int64) (time.Duration, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ts, ok := k.ts[seq]
	return ts, ok
}

// BenchmarkOOMKillToRecord measures, over real OOM kills, the time from the
// kernel's kill line to the record being handed to the next consumer, and
// prints p50/p99 (run by `make bench`; -benchtime=Nx sets the kill count).
// Both ends are on CLOCK_MONOTONIC: the kill line's kernel timestamp plus
// the measured offset of the kernel's clock, and the consumer's call.
func BenchmarkOOMKillToRecord(b *testing.B) {
	s := newOOMScene(b)
	sink := &arrival{path: s.ctr.Path}
	cfg := createDefaultConfig().(*Config)
	cfg.Include = []string{s.ctr.Path}
	startLogsReceiver(b, cfg, sink)
	lines := watchKillLines(b)
	offset := kernelClock(b)
	wall0, mono0 := time.Now(), monotonic() // sink.at (wall) → CLOCK_MONOTONIC

	var lat, dateErr []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.kill(b)
		deadline := time.Now().Add(10 * time.Second)
		for sink.count() <= i {
			if time.Now().After(deadline) {
				b.Fatalf("kill %d: no record", i)
			}
			time.Sleep(time.Millisecond)
		}
		sink.mu.Lock()
		seq, _ := sink.recs[i].Attributes().Get("linux.kmsg.seq")
		delivered := mono0 + sink.at[i].Sub(wall0)
		dated := sink.recs[i].Timestamp().AsTime()
		sink.mu.Unlock()
		ts, ok := lines.get(seq.Int())
		for wait := time.Now().Add(time.Second); !ok && time.Now().Before(wait); ts, ok = lines.get(seq.Int()) {
			time.Sleep(time.Millisecond)
		}
		if !ok {
			b.Fatalf("kill %d: the benchmark's reader did not see kill line seq %d", i, seq.Int())
		}
		lat = append(lat, delivered-(ts+offset))
		dateErr = append(dateErr, (dated.Sub(wall0) - (ts + offset - mono0)).Abs())
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(dateErr)
	p := func(d []time.Duration, q float64) time.Duration { return d[int(q*float64(len(d)-1)+0.5)] }
	b.ReportMetric(float64(p(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(lat, 0.99).Microseconds())/1000, "p99-ms")
	fmt.Printf("BENCH oom_kill_to_record kills=%d p50=%.2fms p99=%.2fms max=%.2fms\n",
		len(lat), ms(p(lat, 0.5)), ms(p(lat, 0.99)), ms(lat[len(lat)-1]))
	fmt.Printf("BENCH oom_latency n=%d p50_ms=%.2f p99_ms=%.2f\n", len(lat), ms(p(lat, 0.5)), ms(p(lat, 0.99)))
	// How far the record's timestamp is from the kill line's true time
	// (the kernel's clock drifts from the wall clock; see kmsg.Clock), and
	// how far realtime − monotonic + timestamp (dmesg -T) would be.
	fmt.Printf("BENCH oom_record_time_error kills=%d p50=%.2fms p99=%.2fms max=%.2fms uncorrected=%.2fms\n",
		len(dateErr), ms(p(dateErr, 0.5)), ms(p(dateErr, 0.99)), ms(dateErr[len(dateErr)-1]), ms(offset.Abs()))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
