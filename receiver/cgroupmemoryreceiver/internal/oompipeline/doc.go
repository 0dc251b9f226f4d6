// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package oompipeline owns the OOM path of the cgroupmemory receiver: the
// kernel log in, OOM log records (or, without a logs pipeline, only counts)
// out. The receiver builds one Pipeline (New), starts it and shuts it down;
// everything in between is here, one file a stage:
//
//	read_linux.go        /dev/kmsg: open, reopen with backoff, the blocking reads
//	checkpoint_linux.go  resume after a restart: what was delivered, saving progress
//	assemble_linux.go    kmsg records -> reports (oomreport.Assembler), lost records,
//	                     the hold for a memory.oom.group line
//	enrich_linux.go      what only the live receiver knows: inferred cgroup, the climb
//	snapshot_linux.go    the process snapshot taken nearest before the kill
//	survive_linux.go     did the container survive the kill (the verdict on the record)
//	deliver_linux.go     the queue, the hand-over to the logs consumer, retries, telemetry
//	counted_linux.go     kills only the oom_kill counters show (kernel log unreadable or
//	                     not read), and the counting-only mode's counts
//	nearmiss_linux.go    near-limit records (snapshots no kill followed)
//	records.go           the plog records, pure functions of what the stages gathered
//	source.go            what the pipeline needs of the sampler and the snapshots
//
// The stages are goroutines joined by channels so that none waits on a
// slower one:
//
//	read (blocking kmsg reads) → assemble (pure, fast) → deliver (the consumer)
//
// The package lives under the receiver (not in the module's top-level
// internal/) because it builds records with the receiver's generated
// metadata: the TelemetryBuilder's counters, the ResourceAttributesConfig
// and ResourceBuilder, the scope name. Go's internal rule lets only the
// receiver's tree import those; a top-level package would need interfaces
// over each of them, for one user. The kernel-facing pieces it is built from
// (kmsg, oomreport, checkpoint, survival, procsnap) stay in internal/ and
// are shared with oomsight explain.
package oompipeline // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/oompipeline"
