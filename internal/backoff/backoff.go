// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package backoff is the one retry schedule of the receiver: a wait that
// starts at First and doubles after every failure up to Max. The kernel
// log's reopen and read retries and the OOM record's delivery retries use
// it, so that each says only what it waits for, not how.
package backoff // import "github.com/oomsight/oomsight/internal/backoff"

import "time"

// Backoff is a doubling wait. The zero value is not ready: set First and
// Max. It is not safe for concurrent use.
type Backoff struct {
	First, Max time.Duration
	next       time.Duration
}

// Next returns the wait before the next try: First after Reset (or at
// the start), twice the previous one after that, never above Max.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.First
	}
	d := b.next
	b.next = min(2*d, b.Max)
	return d
}

// Peek returns the wait Next would return, without taking it.
func (b *Backoff) Peek() time.Duration {
	if b.next == 0 {
		return b.First
	}
	return b.next
}

// Failing reports whether a wait was taken since the last Reset.
func (b *Backoff) Failing() bool { return b.next != 0 }

// Reset starts the schedule again from First.
func (b *Backoff) Reset() { b.next = 0 }

// Sleep waits d, or until stop is closed; it reports false when stop
// ended the wait.
func Sleep(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}
