package cgroupmemoryreceiver

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// clockOffset measures how far the reader's kernel-to-wall conversion is
// off right now, by writing a marker to /dev/kmsg at a known time and
// reading it back. Subtracting it makes the latency below exact to the
// microsecond instead of to the drift between the kernel's clock and
// CLOCK_MONOTONIC (milliseconds after hours of uptime).
func clockOffset(b *testing.B) time.Duration {
	r, err := kmsg.Open("/dev/kmsg")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if err := r.SeekEnd(); err != nil {
		b.Fatal(err)
	}
	marker := fmt.Sprintf("oomsight-bench-clock %d", time.Now().UnixNano())
	written := time.Now()
	if err := os.WriteFile("/dev/kmsg", []byte(marker+"\n"), 0); err != nil {
		b.Fatal(err)
	}
	for {
		rec, err := r.Next()
		if errors.Is(err, os.ErrClosed) {
			b.Fatal("marker not found")
		}
		if err == nil && strings.Contains(rec.Message, marker) {
			return rec.Time.Sub(written)
		}
	}
}

// BenchmarkOOMKillToRecord measures, over real OOM kills, the time from the
// kernel's kill line to the record being handed to the next consumer, and
// prints p50/p99 (run by `make bench`; -benchtime=Nx sets the kill count).
func BenchmarkOOMKillToRecord(b *testing.B) {
	s := newOOMScene(b)
	sink := &arrival{path: s.ctr.Path}
	cfg := createDefaultConfig().(*Config)
	cfg.Include = []string{s.ctr.Path}
	startLogsReceiver(b, cfg, sink)
	offset := clockOffset(b)

	var lat []time.Duration
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
		killed := sink.recs[i].Timestamp().AsTime().Add(-offset)
		lat = append(lat, sink.at[i].Sub(killed))
		sink.mu.Unlock()
	}
	b.StopTimer()
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1)+0.5)] }
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
	fmt.Printf("BENCH oom_kill_to_record kills=%d p50=%.2fms p99=%.2fms max=%.2fms\n",
		len(lat), ms(p(0.5)), ms(p(0.99)), ms(lat[len(lat)-1]))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
