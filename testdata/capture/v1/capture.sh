#!/usr/bin/env bash
# Copyright The oomsight Authors
# SPDX-License-Identifier: Apache-2.0

# Captures real cgroup v1 memory files for oomsight's fixtures.
#
# Run as root on a host with the v1 memory controller (hybrid or legacy):
#   bash testdata/capture/v1/capture.sh
# It creates kubepods-shaped cgroups (cgroupfs and systemd driver shapes)
# below this shell's own memory cgroup, runs memhog workloads in them
# (anonymous memory, tmpfs, page cache, one OOM kill), and copies every
# readable memory.* file into testdata/v1/root/memory/<cgroup path>/. The
# capture base cgroup becomes the fixture's root cgroup, so the fixture tree
# looks like a /sys/fs/cgroup with a v1 memory mount.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
out=$repo/testdata/v1/root/memory
work=$(mktemp -d)
trap 'cleanup' EXIT

mnt=/sys/fs/cgroup/memory
self=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
base=$mnt${self%/}/oomsight-capture-$$
pod_fs=kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4
ctr_fs=$pod_fs/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3
pod_sd=kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice
ctr_sd=$pod_sd/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	sleep 0.5
	rm -f /dev/shm/oomsight-capture-$$
	if [ -d "$base" ]; then
		find "$base" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	fi
	rm -rf "$work"
}

# hog CGROUP CMD...: start memhog in CGROUP and feed it commands; it keeps
# running (holding its memory) until cleanup.
hog() {
	local cg=$1; shift
	local fifo; fifo=$(mktemp -u "$work/fifo.XXXX"); mkfifo "$fifo"
	"$work/memhog" <"$fifo" >"$fifo.out" &
	local pid=$!
	pids+=("$pid")
	exec {fd}>"$fifo"
	echo "$pid" >"$base/$cg/cgroup.procs"
	for c in "$@"; do echo "$c" >&$fd; done
	# wait until every command is answered
	for _ in $(seq 1 100); do
		[ "$(grep -c '^ok' "$fifo.out" 2>/dev/null || true)" -ge "$#" ] && break
		sleep 0.1
	done
	grep -q '^err' "$fifo.out" && { echo "memhog: $(cat "$fifo.out")" >&2; exit 1; }
	true
}

CGO_ENABLED=0 go build -C "$repo" -o "$work/memhog" ./internal/testing/cgrouptest/memhog
mkdir -p "$base/$ctr_fs" "$base/$ctr_sd"
echo $((64 << 20)) >"$base/$ctr_fs/memory.limit_in_bytes"
echo $((48 << 20)) >"$base/$pod_sd/memory.limit_in_bytes"

# One OOM kill in the cgroupfs container, so that failcnt and oom_kill are
# not zero in the fixture. (No memory.memsw limit: with one, the charge
# fails on the memsw counter and memory.failcnt stays 0.)
"$work/memhog" <<<"anon 100" >/dev/null &
victim=$!
echo "$victim" >"$base/$ctr_fs/cgroup.procs" || true
wait "$victim" || true

# Page cache is charged to the cgroup that first touches it, so memhog
# writes its own files; reading one twice puts it on the active list.
hog "$ctr_fs" "anon 24" "file /dev/shm/oomsight-capture-$$ 8" "file $work/cachefile 8" "read $work/cachefile" "read $work/cachefile"
hog "$ctr_sd" "anon 16" "file $work/sdfile 4"
sleep 1

rm -rf "$repo/testdata/v1/root"
for dir in $(cd "$base" && find . -type d | sort); do
	rel=${dir#.}
	mkdir -p "$out$rel"
	for f in "$base$rel"/memory.*; do
		name=$(basename "$f")
		case $name in memory.force_empty | memory.pressure_level) continue ;; esac
		cat "$f" >"$out$rel/$name" 2>/dev/null || rm -f "$out$rel/$name"
	done
done
uname -r >"$repo/testdata/v1/kernel.txt"
echo "captured $(find "$out" -type f | wc -l) files from kernel $(uname -r) into $out"
