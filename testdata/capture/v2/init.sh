#!/bin/busybox sh
# Copyright The oomsight Authors
# SPDX-License-Identifier: Apache-2.0

# /init of the oomsight cgroup v2 capture VM (see capture.sh / README.md).
#
# Everything printed between "@@@OOMSIGHT BEGIN FILE <dest>@@@" and
# "@@@OOMSIGHT END FILE <dest> md5=<md5>@@@" is the output of `cat` of a file
# inside this VM followed by one extra newline (from `echo`); capture.sh
# writes it to testdata/v2/<dest> and verifies the md5.

/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
# Same options systemd uses on a unified-hierarchy host.
mount -t cgroup2 -o nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
# Keep kernel messages off the console so they cannot interleave with dumps.
dmesg -n 1

CG=/sys/fs/cgroup
echo +memory > $CG/cgroup.subtree_control

mark() { echo "@@@OOMSIGHT $*@@@"; }

# dump DEST SRC: cat SRC and print the output between markers.
dump() {
	if cat "$2" > /tmp/dump 2> /tmp/dump.err; then
		mark BEGIN FILE "$1"
		cat /tmp/dump
		echo
		mark END FILE "$1" md5=$(md5sum < /tmp/dump | cut -d' ' -f1)
	else
		mark MISSING FILE "$1" "$(cat /tmp/dump.err)"
	fi
}

CGFILES="cgroup.controllers cgroup.subtree_control cgroup.type cgroup.events
cgroup.stat cgroup.procs memory.current memory.min memory.low memory.high
memory.max memory.peak memory.oom.group memory.stat memory.numa_stat
memory.events memory.events.local memory.pressure memory.swap.current
memory.swap.high memory.swap.max memory.swap.events"

# dumpcg SCOPE CGPATH: dump the interface files of one cgroup to
# SCOPE/<cgroup path>/<file>.
dumpcg() {
	for f in $CGFILES; do
		[ -e "$CG$2/$f" ] && dump "$1$2/$f" "$CG$2/$f"
	done
}

# mkcg CGPATH: create a cgroup, enabling controllers in every ancestor's
# cgroup.subtree_control (memory always, the others if available).
mkcg() {
	p=""
	for comp in $(echo "$1" | tr / ' '); do
		for c in cpuset cpu io memory pids hugetlb; do
			grep -qw "$c" "$CG$p/cgroup.subtree_control" ||
				echo "+$c" > "$CG$p/cgroup.subtree_control" 2> /dev/null
		done
		p="$p/$comp"
		mkdir -p "$CG$p"
	done
}

# runin CGPATH CMD...: run CMD inside the cgroup. $ADJ sets oom_score_adj.
runin() {
	cg=$1
	shift
	sh -c '[ -n "$ADJ" ] && echo "$ADJ" > /proc/self/oom_score_adj
		echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG$cg" "$@"
}

waitfile() {
	n=0
	while [ ! -s "$1" ] && [ $n -lt 600 ]; do
		sleep 0.2
		n=$((n + 1))
	done
}

# killcg CGPATH: SIGKILL whatever is left in a cgroup.
killcg() {
	for p in $(cat "$CG$1/cgroup.procs"); do kill -9 "$p" 2> /dev/null; done
}

mark START

uname -r > /tmp/uname
dump kernel.txt /tmp/uname

# oomsight.only=SCENARIO on the kernel command line runs just that OOM
# scenario (capture.sh ONLY=...), leaving the other fixtures alone.
ONLY=$(sed -n 's/.*oomsight\.only=\([^ ]*\).*/\1/p' /proc/cmdline)

if [ -z "$ONLY" ]; then
# --- Page cache source: ext2 on a loop device (rootfs/tmpfs pages are shmem,
# they never show up as active_file/inactive_file).
insmod /lib/modules/loop.ko
truncate -s 96M /tmp/disk.img
losetup /dev/loop0 /tmp/disk.img
mke2fs -q /dev/loop0 > /dev/null
mount -t ext4 /dev/loop0 /mnt
dd if=/dev/zero of=/mnt/cfs.dat bs=1M count=8 2> /dev/null
dd if=/dev/zero of=/mnt/sd.dat bs=1M count=8 2> /dev/null
sync
echo 3 > /proc/sys/vm/drop_caches

# --- Kubernetes-shaped cgroups.
CFS_POD=/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4
CFS_CTR=$CFS_POD/0dc1822caf9e150de25daa1cf572418426ce6b72757b5efdff52acef348368a3
SD_POD=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice
SD_CTR=$SD_POD/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope

mkcg $CFS_CTR
mkcg $SD_CTR
echo 64M > $CG$CFS_CTR/memory.max
echo 48M > $CG$SD_POD/memory.max

# workload CGPATH NAME: 8 MiB shmem (tmpfs), 8 MiB page cache read twice
# (active_file), 4 MiB dirty page cache, then hold 24 MiB anon.
workload() {
	READY=/tmp/ready.$2 runin "$1" sh -c "
		dd if=/dev/zero of=/dev/shm/$2 bs=1M count=8 2> /dev/null
		cat /mnt/$2.dat > /dev/null
		cat /mnt/$2.dat > /dev/null
		dd if=/dev/zero of=/mnt/$2.out bs=1M count=4 2> /dev/null
		exec memhog 24 hold" &
}
workload $CFS_CTR cfs
workload $SD_CTR sd
waitfile /tmp/ready.cfs
waitfile /tmp/ready.sd
sleep 3

mark STEADY
for cg in "" /kubepods /kubepods/burstable $CFS_POD $CFS_CTR \
	/kubepods.slice /kubepods.slice/kubepods-burstable.slice $SD_POD $SD_CTR; do
	dumpcg cgroupfs "$cg"
done
dump proc/meminfo /proc/meminfo
dump proc/vmstat /proc/vmstat
dump proc/pressure/memory /proc/pressure/memory
dump proc/self/mountinfo /proc/self/mountinfo
dump proc/cgroupfs-container/cgroup /proc/$(cat /tmp/ready.cfs)/cgroup
dump proc/systemd-container/cgroup /proc/$(cat /tmp/ready.sd)/cgroup

# Stop the steady-state workloads so each OOM scenario starts clean.
kill -9 $(cat /tmp/ready.cfs) $(cat /tmp/ready.sd)
wait
rm -f /dev/shm/cfs /dev/shm/sd

fi # steady state

# --- OOM scenarios.
# begin NAME [DEST]: open scenario NAME (its kmsg marker); its files are
# dumped as oom/DEST (default NAME).
begin() {
	S=$1
	D=${2:-$1}
	mark SCENARIO "$S"
	dmesg -c > /dev/null
	echo "oomsight-capture: begin $S" > /dev/kmsg
}
# between FILE: the lines strictly between this scenario's marker lines.
between() {
	awk -v b="oomsight-capture: begin $S" -v e="oomsight-capture: end $S" '
		function ends(s, t) { return length(s) >= length(t) && substr(s, length(s) - length(t) + 1) == t }
		ends($0, e) { f = 0 }
		f { print }
		ends($0, b) { f = 1 }' "$1"
}
# end CGPATH...: close the scenario, dump its kernel log and the cgroups.
end() {
	sleep 3 # let oom_reaper & co. log
	echo "oomsight-capture: end $S" > /dev/kmsg
	kmsgdump -from "oomsight-capture: begin $S" -to "oomsight-capture: end $S" > /tmp/kmsg.$S
	dump oom/$D.kmsg /tmp/kmsg.$S
	# util-linux dmesg reads /dev/kmsg; busybox dmesg uses syslog(2).
	/opt/util-linux/dmesg > /tmp/dmesg.all
	between /tmp/dmesg.all > /tmp/dmesg.$S
	dump oom/$D.dmesg /tmp/dmesg.$S
	dmesg > /tmp/bbdmesg.all
	between /tmp/bbdmesg.all > /tmp/bbdmesg.$S
	dump oom/$D.busybox-dmesg /tmp/bbdmesg.$S
	for cg in "$@"; do
		dumpcg oom/$D/cgroupfs "$cg"
	done
}

if [ -z "$ONLY" ]; then
# (a) container limit: 100 MiB in the 64M cgroupfs-shape container.
begin container-limit
runin $CFS_CTR memhog 100 exit
echo "memhog exit status $?"
end $CFS_CTR $CFS_POD

# (b) pod limit: 100 MiB in the unlimited container of the 48M systemd pod.
begin pod-limit
runin $SD_CTR memhog 100 exit
echo "memhog exit status $?"
end $SD_CTR $SD_POD

# (c) memory.oom.group=1: idle 10 MiB + sleep + 100 MiB allocator.
C_POD=/kubepods/burstable/pod41372d87-a599-4a2c-aa9c-ab180ac97655
C_CTR=$C_POD/007f2e65cd4e232d305c7125e968e44b06f991adc4386b602be75685ea545daa
mkcg $C_CTR
echo 64M > $CG$C_CTR/memory.max
echo 1 > $CG$C_CTR/memory.oom.group
READY=/tmp/ready.c runin $C_CTR idlehog 10 hold &
runin $C_CTR sleep 1000 &
waitfile /tmp/ready.c
begin oom-group
runin $C_CTR memhog 100 exit
echo "memhog exit status $?"
end $C_CTR $C_POD
killcg $C_CTR
wait

# (d) trigger != victim: idle 50 MiB (victim) + 30 MiB spike (trigger), 64M.
D_POD=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod438a990c_8651_48e4_a396_fe569600296a.slice
D_CTR=$D_POD/cri-containerd-a6857f0fde937a9ceef3ff4064da90d55637ca6af94cbc2ab842cdaf4ea95f0b.scope
mkcg $D_CTR
echo 64M > $CG$D_CTR/memory.max
# The victim is a single-threaded busybox dd holding a 50 MiB buffer while
# blocked writing to a pipe. (A multi-threaded Go victim raced: under TCG the
# trigger often got OOM-killed a second time while the victim was exiting.)
runin $D_CTR sh -c 'dd if=/dev/zero bs=50M count=1 2> /dev/null | sleep 1000' &
n=0
while [ $(cat $CG$D_CTR/memory.current) -lt 52428800 ] && [ $n -lt 600 ]; do
	sleep 0.2
	n=$((n + 1))
done
begin trigger-victim
runin $D_CTR spiker 30 exit
echo "spiker exit status $?"
end $D_CTR $D_POD
killcg $D_CTR
wait

# (e) tmpfs fills the 32M limit: 64 MiB written to /dev/shm.
E_POD=/kubepods/burstable/pod81086c51-3ebe-49d5-aa50-6eba2897d8e3
E_CTR=$E_POD/efccb9b65594dc68f917d1ef88bf786291c03f4a088cc527d958d2f1687f4244
mkcg $E_CTR
echo 32M > $CG$E_CTR/memory.max
begin tmpfs
runin $E_CTR dd if=/dev/zero of=/dev/shm/fill bs=1M count=64
echo "dd exit status $?"
end $E_CTR $E_POD
killcg $E_CTR
rm -f /dev/shm/fill

# (f) global OOM: unlimited besteffort container allocates more than RAM.
F_POD=/kubepods/besteffort/pod1e5a2372-c249-42ab-bd18-38bff4980869
F_CTR=$F_POD/76f8ab53bb1b41f2e8288fc05ba1573e5772343e25faa64808edf287d6e1752a
mkcg $F_CTR
begin global
ADJ=1000 runin $F_CTR timeout -s KILL 300 memhog 2048 exit
echo "memhog exit status $?"
end $F_CTR $F_POD /kubepods/besteffort /kubepods ""
dump oom/global/proc/vmstat /proc/vmstat
dump oom/global/proc/meminfo /proc/meminfo
killcg $F_CTR

fi # scenarios a-f

# (g) memory.oom.group=1, idle 10 MiB + a 100 MiB allocator whose leader
# thread waits while another thread allocates (threadhog). When the leader
# exits before the group kill reaches the allocator's process, the kernel
# names that process by the allocating thread's id: the victim appears a
# second time under a pid that is in no row of the task table. It is a race;
# retried until it shows (at most 20 times), then dumped.
if [ -z "$ONLY" ] || [ "$ONLY" = oom-group-thread ]; then
	G_POD=/kubepods/burstable/pod6f1d2c3b-8e4a-4b7c-9d2e-5a6b7c8d9e0f
	G_CTR=$G_POD/3c9e1f0a7b2d4e6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f
	mkcg $G_CTR
	echo 64M > $CG$G_CTR/memory.max
	echo 1 > $CG$G_CTR/memory.oom.group
	try=0
	while [ $try -lt 20 ]; do
		try=$((try + 1))
		rm -f /tmp/ready.g
		READY=/tmp/ready.g runin $G_CTR idlehog 10 hold &
		waitfile /tmp/ready.g
		begin oom-group-thread.$try oom-group-thread
		runin $G_CTR threadhog 100 exit
		echo "threadhog exit status $? (try $try)"
		sleep 1
		n=$(kmsgdump -from "oomsight-capture: begin $S" | grep -o 'Killed process [0-9]*' | sort -u | wc -l)
		if [ "$n" -ge 3 ]; then
			end $G_CTR $G_POD
			killcg $G_CTR
			wait
			break
		fi
		echo "oomsight-capture: end $S" > /dev/kmsg
		killcg $G_CTR
		wait
	done
fi

mark DONE
sync
poweroff -f
sleep 5
