#!/usr/bin/env bash
# Copyright The oomsight Authors
# SPDX-License-Identifier: Apache-2.0

# Captures real cgroup v2 memory-controller files and kernel OOM reports from
# a Debian cloud kernel booted under qemu (TCG) and writes them to
# testdata/v2/. Run as root on a Debian 12 host:
#
#	bash testdata/capture/v2/capture.sh
#
# Environment: KERNEL=/boot/vmlinuz-... to pick a kernel (default: newest
# *-cloud-amd64), VM_TIMEOUT=seconds for the whole VM run (default 600),
# KEEP=1 to keep the temp dir, ONLY=SCENARIO to capture just that OOM
# scenario (e.g. ONLY=oom-group-thread) and leave the other fixtures alone.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
OUT=$REPO/testdata/v2

pkgs=(qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio)
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

KERNEL=${KERNEL:-$(ls /boot/vmlinuz-*-cloud-amd64 | sort -V | tail -n1)}
KVER=${KERNEL#/boot/vmlinuz-}
echo "capture: kernel $KERNEL"

tmp=$(mktemp -d /tmp/oomsight-capture.XXXXXX)
if [[ -z ${KEEP:-} ]]; then trap 'rm -rf "$tmp"' EXIT; else echo "capture: temp dir $tmp"; fi

root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,mnt,lib/modules}
cp /bin/busybox "$root/bin/busybox"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
	-o "$root/bin/oomhelper" ./testdata/capture/v2/oomhelper.go)
for n in memhog idlehog spiker threadhog kmsgdump; do ln -s oomhelper "$root/bin/$n"; done
cp "/lib/modules/$KVER/kernel/drivers/block/loop.ko" "$root/lib/modules/loop.ko"
# util-linux dmesg (what a real node has) plus its shared libraries.
mkdir -p "$root/opt/util-linux"
cp /usr/bin/dmesg "$root/opt/util-linux/dmesg"
for lib in $(ldd /usr/bin/dmesg | grep -o '/[^ ]*'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
install -m 0755 "$HERE/init.sh" "$root/init"
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -9) > "$tmp/initrd.gz"

(cd "$REPO" && go build -o "$tmp/parse" ./testdata/capture/v2/parse.go)

echo "capture: booting VM (timeout ${VM_TIMEOUT:-600}s)"
start=$(date +%s)
rc=0
timeout "${VM_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 \
	-nographic -no-reboot -kernel "$KERNEL" -initrd "$tmp/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1${ONLY:+ oomsight.only=$ONLY}" < /dev/null > "$tmp/console.raw" 2>&1 || rc=$?
echo "capture: VM exited with status $rc after $(($(date +%s) - start))s"

rm -rf "$tmp/out"
prc=0
"$tmp/parse" "$tmp/console.raw" "$tmp/out" || prc=$?
if [[ -n ${ONLY:-} ]]; then
	rm -rf "$OUT/oom/$ONLY" "$OUT/oom/$ONLY".*
	mkdir -p "$OUT/oom"
	cp -r "$tmp/out/oom/$ONLY"* "$OUT/oom/" || prc=1
else
	rm -rf "$OUT"
	mkdir -p "$(dirname "$OUT")"
	cp -r "$tmp/out" "$OUT"
fi
if ((prc != 0)); then
	echo "capture: parse reported problems (see above); partial output in $OUT" >&2
	exit 1
fi

# Sanity checks on what the kernel produced.
fail=0
check() { if ! "$@" > /dev/null; then echo "capture: CHECK FAILED: $*" >&2; fail=1; fi; }
CFS_CTR=kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3
SD_CTR=kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope
scenarios=(container-limit pod-limit oom-group trigger-victim tmpfs global oom-group-thread)
[[ -n ${ONLY:-} ]] && scenarios=("$ONLY")
for c in "$CFS_CTR" "$SD_CTR"; do
	[[ -n ${ONLY:-} ]] && break
	for k in anon file active_file inactive_file shmem; do
		check grep -Eq "^$k [1-9][0-9]*\$" "$OUT/cgroupfs/$c/memory.stat"
	done
	check grep -q '^oom_kill 0$' "$OUT/cgroupfs/$c/memory.events"
done
for s in "${scenarios[@]}"; do
	for pat in 'invoked oom-killer' 'oom-kill:constraint=' 'Killed process'; do
		check grep -q "$pat" "$OUT/oom/$s.kmsg"
		check grep -q "$pat" "$OUT/oom/$s.dmesg"
	done
	[[ $s == global ]] && continue
	check grep -rqE '^oom_kill [1-9]' "$OUT/oom/$s/cgroupfs" --include=memory.events
done
# (g) the victim is named a second time by a thread id (3 distinct pids
# for 2 processes).
if [[ " ${scenarios[*]} " == *" oom-group-thread "* ]]; then
	check test "$(grep -o 'Killed process [0-9]*' "$OUT/oom/oom-group-thread.kmsg" | sort -u | wc -l)" = 3
fi
[[ -n ${ONLY:-} ]] && { ((fail)) && exit 1; echo "capture: done, $ONLY in $OUT/oom"; exit 0; }
# (d) must be a single OOM whose victim is not the trigger.
check test "$(grep -c 'invoked oom-killer' "$OUT/oom/trigger-victim.kmsg")" = 1
check grep -q ';spiker invoked oom-killer' "$OUT/oom/trigger-victim.kmsg"
check grep -q 'Killed process [0-9]* (dd)' "$OUT/oom/trigger-victim.kmsg"
check grep -q 'due to memory.oom.group set' "$OUT/oom/oom-group.kmsg"
check grep -q 'constraint=CONSTRAINT_NONE' "$OUT/oom/global.kmsg"
if ((fail)); then
	echo "capture: some checks failed (races under TCG happen; rerun)" >&2
	exit 1
fi
echo "capture: done, fixtures in $OUT"
