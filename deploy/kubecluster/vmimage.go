// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The VM node's root filesystem: Debian 12 made by debootstrap from the
// mirror the host's apt uses, cached in _build/vmnode-<key> as a raw ext4
// image (root.img, made with mkfs.ext4 -d: no loop device) with the kernel
// and initramfs that Debian's cloud kernel package installed into it
// (vmlinuz, initrd.img: the modules the node needs, overlay, bridge,
// br_netfilter, veth, virtio_blk, are in the image and match the kernel).
// The key hashes everything that goes into the image (vmImageSpec), so a
// change rebuilds it and nothing else does.

// vmImageVersion is bumped when the way the image is made changes in a
// way vmImageSpec does not show.
const vmImageVersion = "1"

// vmSuite is the image's Debian release.
const vmSuite = "bookworm"

// vmPackages are installed into the image besides debootstrap's minbase:
// systemd as PID 1 (with udev for the disks' labels and the guest agent's
// port), what the kubelet, containerd and kube-proxy call (runc, the CNI
// plugins, iptables, conntrack, mount, kmod), the kernel, and qemu's guest
// agent, through which VMExec runs commands without a network login.
var vmPackages = []string{
	"ca-certificates",
	"conntrack",
	"containernetworking-plugins",
	"dbus",
	"e2fsprogs",
	"initramfs-tools",
	"iproute2",
	"iptables",
	"kmod",
	"linux-image-cloud-amd64",
	"procps",
	"qemu-guest-agent",
	"runc",
	"systemd",
	"systemd-sysv",
	"udev",
	"util-linux",
}

// vmImageSize is the root image's (sparse) size: the packages take about
// 0.5 GiB, the rest is for containerd's images and the pods.
const vmImageSize = 4 << 30

// vmImageFiles are written into the image after debootstrap: the node's
// name, its mounts (the node disk by label, read-only), the unit that runs
// the node disk's setup.sh, and the timers and services of a general
// purpose system that only cost an emulated CPU here, masked. A value of
// "->/dev/null" is a symlink (a masked unit).
func vmImageFiles() map[string]string {
	files := map[string]string{
		"etc/hostname": VMNodeName + "\n",
		"etc/hosts":    "127.0.0.1 localhost\n127.0.1.1 " + VMNodeName + "\n",
		"etc/fstab": "/dev/vda / ext4 rw,errors=remount-ro 0 1\n" +
			"LABEL=" + vmDiskLabel + " " + vmDir + " ext4 ro,nofail,x-systemd.device-timeout=30s 0 0\n",
		"etc/systemd/system/oomsight-node.service": `[Unit]
Description=oomsight VM node: network, containerd, kubelet from the node disk
RequiresMountsFor=` + vmDir + `
ConditionPathExists=` + vmPath("setup.sh") + `
After=local-fs.target systemd-modules-load.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh ` + vmPath("setup.sh") + `

[Install]
WantedBy=multi-user.target
`,
		"etc/systemd/system/multi-user.target.wants/oomsight-node.service": "->/etc/systemd/system/oomsight-node.service",
	}
	for _, unit := range []string{"apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer", "systemd-timesyncd.service", "getty@tty1.service"} {
		files["etc/systemd/system/"+unit] = "->/dev/null"
	}
	return files
}

// vmImageSpec is the text the key hashes: version, suite, size, packages
// (in any order), files.
func vmImageSpec(packages []string, files map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %s\nsuite %s\nsize %d\n", vmImageVersion, vmSuite, vmImageSize)
	pkgs := slices.Clone(packages)
	slices.Sort(pkgs)
	fmt.Fprintf(&b, "packages %s\n", strings.Join(pkgs, ","))
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "file %s %d\n%s\n", n, len(files[n]), files[n])
	}
	return b.String()
}

// vmImageKey names the cached image: the first 12 hex digits of the
// spec's SHA-256.
func vmImageKey() string { return specKey(vmImageSpec(vmPackages, vmImageFiles())) }

func specKey(spec string) string {
	sum := sha256.Sum256([]byte(spec))
	return hex.EncodeToString(sum[:])[:12]
}

// BuildVMImage makes the VM's root filesystem image unless the one of the
// current key exists; images of other keys are removed. It needs root
// (debootstrap) and Debian's debootstrap, e2fsprogs.
func (c *Cluster) BuildVMImage(ctx context.Context) error {
	dir := c.vmImageDir()
	if _, err := os.Stat(filepath.Join(dir, ".built")); err == nil {
		c.Log("vm image: %s is current", dir)
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("vm image: debootstrap needs root")
	}
	mirror, err := hostMirror(vmSuite)
	if err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(c.Root, "_build", "vmnode-*"))
	for _, o := range old {
		if err := os.RemoveAll(o); err != nil {
			return fmt.Errorf("vm image: remove %s: %w", o, err)
		}
	}
	tmp := dir + ".tmp"
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	t0 := time.Now()
	c.Log("vm image: debootstrap %s with %d packages from %s into %s (cold: about 11 minutes)", vmSuite, len(vmPackages), mirror, rootfs)
	if _, err := run(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(vmPackages, ","), vmSuite, rootfs, mirror); err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	c.Log("vm image: debootstrap done in %.0f s", time.Since(t0).Seconds())
	if err := finishRootfs(rootfs, tmp); err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	img := filepath.Join(tmp, "root.img")
	if err := os.Truncate(createEmpty(img), vmImageSize); err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	if _, err := run(ctx, "mkfs.ext4", "-q", "-F", "-L", "oomroot", "-d", rootfs, img); err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	if err := os.RemoveAll(rootfs); err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "spec"), []byte(vmImageSpec(vmPackages, vmImageFiles())), 0o644); err != nil { //nolint:gosec // a build cache's description, readable
		return fmt.Errorf("vm image: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".built"), nil, 0o644); err != nil { //nolint:gosec // a build cache's marker, readable
		return fmt.Errorf("vm image: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	c.Log("vm image: %s built in %.0f s", dir, time.Since(t0).Seconds())
	return nil
}

// finishRootfs writes vmImageFiles into rootfs, takes the kernel and
// initramfs out to dir, and drops apt's caches (packages and lists).
func finishRootfs(rootfs, dir string) error {
	for name, content := range vmImageFiles() {
		p := filepath.Join(rootfs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		_ = os.Remove(p)
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				return err
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil { //nolint:gosec // system files of the image, world-readable as Debian's
			return err
		}
	}
	for glob, name := range map[string]string{"boot/vmlinuz-*": "vmlinuz", "boot/initrd.img-*": "initrd.img"} {
		m, _ := filepath.Glob(filepath.Join(rootfs, glob))
		if len(m) != 1 {
			return fmt.Errorf("want one %s in the image, found %v", glob, m)
		}
		if err := copyFile(m[0], filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_Packages", "var/cache/apt/*.bin"} {
		m, _ := filepath.Glob(filepath.Join(rootfs, glob))
		for _, f := range m {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// hostMirror is the Debian mirror the host's apt uses for suite: the first
// "deb" source of it with the main component, in /etc/apt/sources.list.d
// (deb822 .sources or one-line .list) or /etc/apt/sources.list.
func hostMirror(suite string) (string, error) {
	var files []string
	for _, g := range []string{"/etc/apt/sources.list.d/*.sources", "/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if u := aptMirror(string(b), strings.HasSuffix(f, ".sources"), suite); u != "" {
			return u, nil
		}
	}
	return "", fmt.Errorf("no deb source of %s main in the host's apt sources (%s)", suite, strings.Join(files, ", "))
}

// aptMirror picks the URI of the first deb source of suite with component
// main from an apt sources file, deb822 (a .sources file) or one-line.
func aptMirror(text string, deb822 bool, suite string) string {
	if !deb822 {
		for line := range strings.SplitSeq(text, "\n") {
			f := strings.Fields(strings.TrimSpace(line))
			if len(f) == 0 || f[0] != "deb" {
				continue
			}
			f = f[1:]
			if len(f) > 0 && strings.HasPrefix(f[0], "[") {
				for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
					f = f[1:]
				}
				f = f[1:]
			}
			if len(f) >= 3 && f[1] == suite && slices.Contains(f[2:], "main") {
				return f[0]
			}
		}
		return ""
	}
	for stanza := range strings.SplitSeq(text, "\n\n") {
		fields := map[string][]string{}
		for line := range strings.SplitSeq(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, " ") {
				continue
			}
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.Fields(v)
		}
		if slices.Contains(fields["types"], "deb") && slices.Contains(fields["suites"], suite) &&
			slices.Contains(fields["components"], "main") && len(fields["uris"]) > 0 {
			return fields["uris"][0]
		}
	}
	return ""
}
