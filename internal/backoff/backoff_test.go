// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package backoff

import (
	"testing"
	"time"
)

func TestDoublesUpToMax(t *testing.T) {
	b := Backoff{First: time.Second, Max: 5 * time.Second}
	if b.Failing() {
		t.Fatal("failing before any wait")
	}
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
	}
	if !b.Failing() || b.Peek() != 5*time.Second {
		t.Fatalf("failing %v, peek %v", b.Failing(), b.Peek())
	}
	b.Reset()
	if b.Failing() || b.Next() != time.Second {
		t.Fatal("Reset does not start again from First")
	}
}

func TestSleepEndsOnStop(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	if Sleep(stop, time.Hour) {
		t.Fatal("Sleep waited although stop was closed")
	}
	if !Sleep(make(chan struct{}), time.Millisecond) {
		t.Fatal("Sleep reported a stop that did not happen")
	}
}
