// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRead measures one sample of the captured v1 container through
// held-open descriptors (the scrape path) against opening, reading and
// closing each file (what a naive reader does), in one run.
func BenchmarkRead(b *testing.B) {
	root, err := filepath.Abs("../../testdata/v1/root")
	if err != nil {
		b.Fatal(err)
	}
	h, err := Detect(root)
	if err != nil {
		b.Fatal(err)
	}
	path := "/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3"
	b.Run("held-open", func(b *testing.B) {
		c, err := Open(h, path, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		r := NewReader()
		var s Sample
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			if err := r.Read(c, now, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open-read-close", func(b *testing.B) {
		dir := h.Abs(path)
		var s Sample
		b.ReportAllocs()
		for b.Loop() {
			s.Reset()
			for _, spec := range v1Files {
				if spec.optional != 0 {
					continue
				}
				data, err := os.ReadFile(filepath.Join(dir, spec.name))
				if err != nil {
					b.Fatal(err)
				}
				if err := spec.parse(data, &s); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
