// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport

import (
	"os"
	"testing"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// BenchmarkAssemblerRecords feeds the records of a real report (raw
// /dev/kmsg, as the receiver reads them) through the Assembler: the cost
// per record of the live pipeline.
func BenchmarkAssemblerRecords(b *testing.B) {
	raw, err := os.ReadFile("../../testdata/v2/oom/global.kmsg")
	if err != nil {
		b.Fatal(err)
	}
	var rs []kmsg.Record
	for _, line := range splitLines(string(raw)) {
		if r, err := kmsg.ParseRecord([]byte(line)); err == nil {
			rs = append(rs, r)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		a := NewAssembler()
		for _, r := range rs {
			a.Add(r)
		}
		a.Flush()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/record")
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
