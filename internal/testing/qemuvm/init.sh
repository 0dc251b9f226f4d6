#!/bin/busybox sh
# Copyright The oomsight Authors
# SPDX-License-Identifier: Apache-2.0

# /init of oomsight's cgroup v2 VMs (qemuvm.Kernel.Boot; make e2e-v2 and
# make bench-v2). It sets up a cgroup v2 host in an initramfs of busybox,
# runs /workload.sh (what the caller put into the initramfs) and powers off.
# The kernel hands the command line's KEY=value words to its environment:
# VMTAG prefixes this script's own console lines (TAG INIT …, TAG EXIT
# <status of the workload>), DISK_MIB sizes the RAM disk (default 64),
# CGROUP=v1 mounts the memory controller on cgroup v1 instead of v2.
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt/disk /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
tag=${VMTAG:-VM}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
if [ "$CGROUP" = v1 ]; then
	# The memory controller on cgroup v1, as on a legacy or hybrid host
	# (make bench-v2 compares both on this same kernel).
	mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
	mkdir -p /sys/fs/cgroup/memory
	mount -t cgroup -o nosuid,nodev,noexec,relatime,memory memory /sys/fs/cgroup/memory
else
	# Same options systemd uses on a unified-hierarchy host.
	mount -t cgroup2 -o nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
fi
# Keep kernel messages (OOM reports) off the console: they would interleave
# with the workload's output. Tests read them from /dev/kmsg.
dmesg -n 1
echo "$tag INIT up $(cut -d' ' -f1 /proc/uptime)s, $(grep -c ^processor /proc/cpuinfo) CPUs, $(grep MemTotal /proc/meminfo | tr -s ' ')"

# A disk-backed filesystem, so that page cache shows up as active_file and
# inactive_file and can be reclaimed (tmpfs pages are shmem). brd is a RAM
# block device whose pages are not charged to any cgroup.
if insmod /lib/modules/brd.ko rd_nr=1 rd_size=$((${DISK_MIB:-64} * 1024)) &&
	mke2fs -q /dev/ram0 > /dev/null && mount -t ext4 /dev/ram0 /mnt/disk; then
	export OOMSIGHT_E2E_DISK=/mnt/disk
else
	echo "$tag INIT no disk-backed filesystem (brd/ext4 failed)"
fi
export OOMSIGHT_E2E_MEMHOG=/bin/memhog

cd /tmp
sh /workload.sh 2>&1
echo "$tag EXIT $?"
sync
poweroff -f
sleep 10
