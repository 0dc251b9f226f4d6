#!/usr/bin/env bash
# Copyright The oomsight Authors
# SPDX-License-Identifier: Apache-2.0

# Captures real kernel OOM reports from this host's cgroup v1 memory
# controller for oomsight's OOM parser fixtures.
#
# Run as root on a host with the v1 memory controller (hybrid or legacy):
#   bash testdata/capture/v1/oom.sh
# It creates kubepods-shaped cgroups (cgroupfs and systemd driver shapes)
# below this shell's own memory cgroup, gets memhog OOM-killed in four
# scenarios and saves, for each, the records strictly between two marker
# records it writes to /dev/kmsg:
#   testdata/oom/v1-<scenario>.kmsg   raw /dev/kmsg records, one per line
#   testdata/oom/v1-<scenario>.dmesg  util-linux dmesg output, same span
# Other processes' kernel messages (even other OOM kills) may interleave:
# that is real and kept.
#
# No memory.memsw limit is set: without swap it adds nothing, and with one
# the charge fails on the memsw counter instead of the memory counter.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
out=$repo/testdata/oom
work=$(mktemp -d)
trap 'cleanup' EXIT

mnt=/sys/fs/cgroup/memory
self=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
base=$mnt${self%/}/oomsight-oom-$$
pod_fs=kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4
ctr_fs=$pod_fs/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3
pod_sd=kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice
ctr_sd=$pod_sd/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope
pod_tv=kubepods/besteffort/pod438a990c-8651-48e4-a396-fe569600296a
ctr_tv=$pod_tv/a6857f0fde937a9ceef3ff4064da90d55637ca6af94cbc2ab842cdaf4ea95f0b
pod_tm=kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod81086c51_3ebe_49d5_aa50_6eba2897d8e3.slice
ctr_tm=$pod_tm/cri-containerd-efccb9b65594dc68f917d1ef88bf786291c03f4a088cc527d958d2f1687f4244.scope
shm=/dev/shm/oomsight-oom-$$
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	sleep 0.5
	rm -f "$shm"
	if [ -d "$base" ]; then
		find "$base" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	fi
	rm -rf "$work"
}

# start CGROUP: start memhog inside CGROUP (it joins before it allocates)
# reading commands from a fifo on fd $hogfd; its pid is in $hogpid.
start() {
	local fifo; fifo=$(mktemp -u "$work/fifo.XXXX"); mkfifo "$fifo"
	bash -c 'echo $$ >"$1/cgroup.procs" && exec "$2"' _ "$base/$1" "$work/memhog" <"$fifo" >"$fifo.out" &
	hogpid=$!
	pids+=("$hogpid")
	exec {hogfd}>"$fifo"
	hogout=$fifo.out
}

# answers N: wait until the last started memhog answered N commands.
answers() {
	for _ in $(seq 1 100); do
		[ "$(grep -c '^ok' "$hogout" 2>/dev/null || true)" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "memhog: $(cat "$hogout")" >&2
	return 1
}

mark() { echo "oomsight-capture: $1 $2" >/dev/kmsg; }

# save NAME: copy the records between NAME's last begin/end markers.
save() {
	"$work/kmsgdump" "oomsight-capture: begin $1" "oomsight-capture: end $1" >"$out/v1-$1.kmsg"
	dmesg | awk -v b="oomsight-capture: begin $1" -v e="oomsight-capture: end $1" '
		index($0, b) { buf = ""; on = 1; next }
		index($0, e) { if (on) keep = buf; on = 0; next }
		on { buf = buf $0 "\n" }
		END { printf "%s", keep }' >"$out/v1-$1.dmesg"
	echo "v1-$1: $(wc -l <"$out/v1-$1.kmsg") records, $(grep -c 'Killed process' "$out/v1-$1.kmsg" || true) kill lines"
}

# The kmsg dumper: each read(2) of /dev/kmsg returns one record; keep the
# first line (the dictionary lines that follow are not part of the message).
cat >"$work/kmsgdump.go" <<'EOF'
package main

import (
	"bytes"
	"errors"
	"os"
	"syscall"
)

func main() {
	from, to := []byte(os.Args[1]), []byte(os.Args[2])
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		panic(err)
	}
	var span, keep [][]byte
	on := false
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			panic(err)
		}
		rec := bytes.Clone(buf[:n])
		if i := bytes.IndexByte(rec, '\n'); i >= 0 {
			rec = rec[:i+1]
		}
		msg := rec[bytes.IndexByte(rec, ';')+1 : len(rec)-1]
		switch {
		case bytes.Equal(msg, from):
			span, on = nil, true
		case bytes.Equal(msg, to):
			if on {
				keep = span
			}
			on = false
		case on:
			span = append(span, rec)
		}
	}
	for _, r := range keep {
		os.Stdout.Write(r)
	}
}
EOF
CGO_ENABLED=0 go build -C "$repo" -o "$work/memhog" ./internal/testing/cgrouptest/memhog
(cd "$work" && CGO_ENABLED=0 GO111MODULE=off go build -o kmsgdump kmsgdump.go)
mkdir -p "$out" "$base/$ctr_fs" "$base/$ctr_sd" "$base/$ctr_tv" "$base/$ctr_tm"
echo $((64 << 20)) >"$base/$ctr_fs/memory.limit_in_bytes"
echo $((48 << 20)) >"$base/$pod_sd/memory.limit_in_bytes"
echo $((64 << 20)) >"$base/$ctr_tv/memory.limit_in_bytes"
echo $((32 << 20)) >"$base/$ctr_tm/memory.limit_in_bytes"

# container-limit: 100 MiB in the 64M cgroupfs container.
mark begin container-limit
start "$ctr_fs"
echo "anon 100" >&$hogfd
wait "$hogpid" || true
sleep 0.5
mark end container-limit
save container-limit

# pod-limit: 100 MiB in the unlimited container of the 48M systemd pod.
mark begin pod-limit
start "$ctr_sd"
echo "anon 100" >&$hogfd
wait "$hogpid" || true
sleep 0.5
mark end pod-limit
save pod-limit

# trigger-victim: an idle memhog holds 40 MiB; a second one allocating
# 30 MiB triggers the OOM, the bigger idle one is the victim.
start "$ctr_tv"
holder=$hogpid
echo "anon 40" >&$hogfd
answers 1
mark begin trigger-victim
start "$ctr_tv"
echo "anon 30" >&$hogfd
answers 1 || true
wait "$holder" || true
echo exit >&$hogfd
wait "$hogpid" || true
sleep 0.5
mark end trigger-victim
save trigger-victim

# tmpfs: memhog writes 64 MiB to /dev/shm in the 32M container; the shmem
# pages stay charged after the kill.
mark begin tmpfs
start "$ctr_tm"
echo "file $shm 64" >&$hogfd
wait "$hogpid" || true
sleep 0.5
mark end tmpfs
save tmpfs
rm -f "$shm"
uname -r >"$out/v1-kernel.txt"
echo "captured from kernel $(uname -r) into $out"
