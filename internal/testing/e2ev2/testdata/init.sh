#!/bin/busybox sh
# Copyright The oomsight Authors
# SPDX-License-Identifier: Apache-2.0

# /init of the oomsight cgroup v2 end-to-end VM (see ../README.md). The host
# side (host_test.go) puts it into the initramfs next to busybox, memhog,
# brd.ko and the static e2ev2 test binary.
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt/disk /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
# Same options systemd uses on a unified-hierarchy host.
mount -t cgroup2 -o nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
# Keep kernel messages (OOM reports) off the console: they would interleave
# with the test's output. The test reads them from /dev/kmsg.
dmesg -n 1
echo "E2EV2 INIT up $(cut -d' ' -f1 /proc/uptime)s"

# A disk-backed filesystem, so that page cache shows up as active_file and
# inactive_file (tmpfs pages are shmem). brd is a RAM block device whose
# pages are not charged to any cgroup.
if insmod /lib/modules/brd.ko rd_nr=1 rd_size=65536 &&
	mke2fs -q /dev/ram0 > /dev/null && mount -t ext4 /dev/ram0 /mnt/disk; then
	export OOMSIGHT_E2E_DISK=/mnt/disk
else
	echo "E2EV2 INIT no disk-backed filesystem (brd/ext4 failed)"
fi

cd /tmp
OOMSIGHT_E2E_VM=1 OOMSIGHT_E2E_MEMHOG=/bin/memhog \
	/bin/e2ev2.test -test.v -test.count=1 -test.run "${E2EV2_RUN:-^TestVM}" -test.timeout 210s 2>&1
echo "E2EV2 EXIT $?"
sync
poweroff -f
sleep 10
