#!/usr/bin/env bash
# Copyright The oomsight Authors
# SPDX-License-Identifier: Apache-2.0

# Captures one real kernel OOM report in the text forms other tools write,
# for `oomsight explain`'s line adapter: the same kill as raw /dev/kmsg
# records and as
#   dmesg --time-format=iso                      v1-formats.dmesg-iso
#   journalctl -k -o short-monotonic             v1-formats.journal-monotonic
#   journalctl -k -o short-precise               v1-formats.journal-precise
#   busybox syslogd -S (no hostname) + klogd     v1-formats.syslog-nohost
# and a second kill through busybox syslogd's default form (hostname and
# facility.level before the tag) as v1-formats2.syslog-facility with its
# v1-formats2.kmsg.
#
# Run as root on a host with the v1 memory controller:
#   bash testdata/capture/v1/formats.sh
# It needs busybox (busybox-static) and systemd-journald (Debian's systemd
# package; a journald is started for the capture when none runs). Each
# output holds the lines between two markers written to /dev/kmsg.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
out=$repo/testdata/oom
work=$(mktemp -d)
mnt=/sys/fs/cgroup/memory
self=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
cg=$mnt${self%/}/oomsight-formats-$$/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3
bg=()
cleanup() {
	for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	[ -d "$mnt${self%/}/oomsight-formats-$$" ] && find "$mnt${self%/}/oomsight-formats-$$" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -C "$repo" -o "$work/memhog" ./internal/testing/cgrouptest/memhog
mkdir -p "$cg"
echo $((64 << 20)) >"$cg/memory.limit_in_bytes"

mark() { echo "oomsight-capture: $1 $2" >/dev/kmsg; }
# between FILE NAME: the lines of FILE strictly between NAME's markers.
between() {
	awk -v b="oomsight-capture: begin $2" -v e="oomsight-capture: end $2" '
		index($0, b) { buf = ""; on = 1; next }
		index($0, e) { if (on) keep = buf; on = 0; next }
		on { buf = buf $0 "\n" }
		END { printf "%s", keep }' "$1"
}
kmsg() { # the raw records between NAME's markers, one per line
	timeout 2 cat /dev/kmsg 2>/dev/null | grep -v '^ ' | between /dev/stdin "$1" || true
}
# kill NAME: memhog allocates 100 MiB in the 64 MiB cgroup, between markers.
kill_once() {
	mark begin "$1"
	bash -c 'echo $$ >"$1/cgroup.procs" && echo "anon 100" | exec "$2"' _ "$cg" "$work/memhog" >/dev/null || true
	sleep 1
	mark end "$1"
	sleep 1
}

if ! pgrep -x systemd-journal >/dev/null; then
	mkdir -p /run/systemd/journal
	/lib/systemd/systemd-journald & bg+=($!)
	sleep 1
fi
busybox syslogd -n -S -O "$work/nohost.log" & bg+=($!)
busybox klogd -n & bg+=($!)
sleep 1
kill_once formats
kmsg formats >"$out/v1-formats.kmsg"
dmesg --time-format=iso >"$work/iso.txt"; between "$work/iso.txt" formats >"$out/v1-formats.dmesg-iso"
journalctl -k -o short-monotonic --no-pager >"$work/mono.txt"; between "$work/mono.txt" formats >"$out/v1-formats.journal-monotonic"
journalctl -k -o short-precise --no-pager >"$work/precise.txt"; between "$work/precise.txt" formats >"$out/v1-formats.journal-precise"
between "$work/nohost.log" formats >"$out/v1-formats.syslog-nohost"

kill "${bg[-2]}" "${bg[-1]}" 2>/dev/null || true
sleep 0.5
busybox syslogd -n -O "$work/facility.log" & bg+=($!)
busybox klogd -n & bg+=($!)
sleep 1
kill_once formats2
kmsg formats2 >"$out/v1-formats2.kmsg"
between "$work/facility.log" formats2 >"$out/v1-formats2.syslog-facility"
for f in "$out"/v1-formats*; do echo "$(basename "$f"): $(wc -l <"$f") lines, $(grep -c 'Killed process' "$f" || true) kill lines"; done
