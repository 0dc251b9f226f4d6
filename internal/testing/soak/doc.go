// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package soak holds the churn soak test of the cgroupmemory receiver (see
// soak_test.go): real cgroups created and removed continuously, processes
// entering and leaving them, OOM kills in some, scraped fast, with the
// process's descriptors, goroutines and memory checked afterwards.
package soak // import "github.com/oomsight/oomsight/internal/testing/soak"
