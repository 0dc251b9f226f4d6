// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

// cause decides what filled the limit. The memcg's stat dump tells what
// the cgroup was charged for, which is what the limit counts; the victim's
// rss only tells about one process, so it is the fallback when the dump is
// missing or says nothing (the 6.18 v1 pod-level dump can be all zeros
// because child statistics were not flushed up to it yet).
func cause(r *Report) (string, *int64, bool) {
	if name, n, ok := causeFromStat(r.MemcgStat, r.KmemUsage); ok {
		return name, new(n), false
	}
	name, n, ok := largest([]amount{
		{CauseAnon, r.AnonRSS},
		{CauseShmem, r.ShmemRSS},
		{CauseFile, r.FileRSS},
	})
	if !ok {
		return CauseUnknown, nil, false
	}
	return name, new(n), true
}

type amount struct {
	name  string
	bytes *int64
}

// largest picks the biggest known, positive amount; ties go to the first.
func largest(as []amount) (string, int64, bool) {
	best, n := "", int64(0)
	for _, a := range as {
		if a.bytes != nil && *a.bytes > n {
			best, n = a.name, *a.bytes
		}
	}
	return best, n, best != ""
}

// causeFromStat reads v2 keys (anon, file, shmem, kernel) or v1 keys
// (rss, cache, shmem, hierarchical total_* preferred), whichever the dump
// has. Shared memory is counted in file/cache, so it is taken out of them.
func causeFromStat(st map[string]int64, kmem *int64) (string, int64, bool) {
	get := func(keys ...string) *int64 {
		for _, k := range keys {
			if v, ok := st[k]; ok {
				return &v
			}
		}
		return nil
	}
	minus := func(a, b *int64) *int64 {
		if a == nil {
			return nil
		}
		if b == nil {
			return a
		}
		return new(*a - *b)
	}
	if _, v2 := st["anon"]; v2 {
		shmem := get("shmem")
		kernel := get("kernel")
		if kernel == nil {
			kernel = sum(st, "kernel_stack", "slab", "pagetables", "sock", "percpu")
		}
		return largest([]amount{
			{CauseAnon, get("anon")},
			{CauseShmem, shmem},
			{CauseFile, minus(get("file"), shmem)},
			{CauseKernel, kernel},
		})
	}
	if _, v1 := st["rss"]; v1 {
		anon, cache := get("total_rss", "rss"), get("total_cache", "cache")
		if *anon == 0 && (cache == nil || *cache == 0) {
			// A v1 memcg at its limit holds pages: an all-zero dump was
			// printed before the children's counters were flushed to it.
			return "", 0, false
		}
		shmem := get("total_shmem", "shmem")
		return largest([]amount{
			{CauseAnon, anon},
			{CauseShmem, shmem},
			{CauseFile, minus(cache, shmem)},
			{CauseKernel, kmem},
		})
	}
	return "", 0, false
}

// sum adds the keys present; nil when none is.
func sum(st map[string]int64, keys ...string) *int64 {
	var total *int64
	for _, k := range keys {
		if v, ok := st[k]; ok {
			if total == nil {
				total = new(int64)
			}
			*total += v
		}
	}
	return total
}
