// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The VM node: qemu in software emulation (these machines have no
// /dev/kvm), 2 CPUs and 3 GiB, Debian's cloud kernel from the cached image
// (vmimage.go) booted with the unified cgroup hierarchy, its root a qcow2
// overlay on the cached image (thrown away by Down), its node disk made
// anew by each Up (vmfiles.go), its network a tap on the host's bridge
// VMBridge.

const (
	// qemuComponent is the VM's process, a component like the others
	// (pid file, log, Down stops it).
	qemuComponent = "qemu-system-x86_64"
	// vmReadyTimeout bounds the VM's boot to its Node's Ready, from qemu's
	// start: 126 s were measured (issue 25).
	vmReadyTimeout = 300 * time.Second
	// vmMemoryMiB and vmCPUs are the VM's size.
	vmMemoryMiB = 3072
	vmCPUs      = 2
	// vmMAC is the VM's address on VMBridge (the locally administered
	// range qemu uses).
	vmMAC = "52:54:00:6f:6f:02"
)

// vmKernelArgs: the root is the first virtio disk; cgroup v2 unified
// (Debian 12's default, stated so that it never depends on it); journald
// mirrors every journal line to the serial console, which qemu writes to
// a file on the host: the kubelet's log is readable without a shell in
// the VM even when the VM never reaches the network; eth0 by its old
// name; a panic stops qemu (-no-reboot).
const vmKernelArgs = "root=/dev/vda rw console=ttyS0 loglevel=4 systemd.unified_cgroup_hierarchy=1 " +
	"systemd.journald.forward_to_console=1 systemd.show_status=0 net.ifnames=0 panic=-1"

// vmStateDir is the VM's working directory on the host (overlay, node
// disk).
func (c *Cluster) vmStateDir(elem ...string) string {
	return c.path(append([]string{"vm"}, elem...)...)
}

// ConsoleLog is the VM's serial console (kernel and journal).
func (c *Cluster) ConsoleLog() string { return c.LogFile("vm-console") }

// GuestAgentSocket is the qemu guest agent's socket: VMExec runs commands
// in the VM through it.
func (c *Cluster) GuestAgentSocket() string { return c.runPath("vm-qga.sock") }

// vmImageDir is the cached root filesystem's directory.
func (c *Cluster) vmImageDir() string {
	return filepath.Join(c.Root, "_build", "vmnode-"+vmImageKey())
}

// containerdDir is make containerd2's output for the version pinned in
// internal/kube/containerd/go.mod.
func (c *Cluster) containerdDir() (string, error) {
	b, err := os.ReadFile(filepath.Join(c.Root, "internal", "kube", "containerd", "go.mod"))
	if err != nil {
		return "", fmt.Errorf("containerd's module: %w", err)
	}
	v, err := containerdVersion(string(b))
	if err != nil {
		return "", err
	}
	return filepath.Join(c.Root, "_build", "containerd-"+v), nil
}

// containerdVersion is the containerd/v2 version a go.mod requires.
func containerdVersion(gomod string) (string, error) {
	for line := range strings.SplitSeq(gomod, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == "github.com/containerd/containerd/v2" {
			return f[1], nil
		}
	}
	return "", errors.New("go.mod requires no github.com/containerd/containerd/v2")
}

// checkVM tells what the VM node lacks before anything starts.
func (c *Cluster) checkVM() error {
	for _, b := range []string{qemuComponent, "qemu-img", "mkfs.ext4"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s is missing (make k8s-up NODES=v2|both installs qemu-system-x86, qemu-utils and e2fsprogs): %w", b, err)
		}
	}
	img := c.vmImageDir()
	for _, f := range []string{"root.img", "vmlinuz", "initrd.img"} {
		if _, err := os.Stat(filepath.Join(img, f)); err != nil {
			return fmt.Errorf("the VM image is not built (make vmnode-image): %w", err)
		}
	}
	dir, err := c.containerdDir()
	if err != nil {
		return err
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("containerd 2 is not built (make containerd2): %w", err)
		}
	}
	return nil
}

// setupVMNetwork makes the host's side of the link: the bridge VMBridge at
// VMHostIP, the VM's tap on it, the VM's pods routed through the VM, and
// every other address of ClusterCIDR unreachable, so that a pod's packet
// to a range no node has never takes the host's default route out.
func (*Cluster) setupVMNetwork(ctx context.Context) error {
	for _, args := range [][]string{
		{"link", "add", VMBridge, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", VMHostIP, VMLinkBits), "dev", VMBridge},
		{"link", "set", VMBridge, "up"},
		{"tuntap", "add", "dev", VMTap, "mode", "tap"},
		{"link", "set", VMTap, "master", VMBridge},
		{"link", "set", VMTap, "up"},
		{"route", "add", VMPodCIDR, "via", VMIP, "dev", VMBridge},
		{"route", "add", "unreachable", ClusterCIDR},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// writeVMCerts mints the VM kubelet's certificate (its Node's identity,
// its serving address VMIP for the API server's logs and exec).
func (c *Cluster) writeVMCerts() error {
	return c.pki.issue("vm-kubelet", "system:node:"+VMNodeName, []string{"system:nodes"}, []string{VMNodeName}, parseIPs([]string{VMIP}))
}

// startVM makes the node disk and the root overlay and starts qemu; it
// returns once qemu runs (waitVMReady waits for the Node).
func (c *Cluster) startVM(ctx context.Context) error {
	if err := c.makeNodeDisk(ctx); err != nil {
		return err
	}
	img := c.vmImageDir()
	overlay := c.vmStateDir("root.qcow2")
	if _, err := run(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", filepath.Join(img, "root.img"), overlay); err != nil {
		return err
	}
	p, err := c.start(qemuComponent, qemuComponent, c.qemuArgs(img)...)
	if err != nil {
		return err
	}
	c.vmStarted = time.Now()
	c.vmProc = p
	// qemu fails at once on a bad argument or a busy tap.
	select {
	case <-p.done:
		return fmt.Errorf("qemu exited (%v)\n%s", p.cmd.ProcessState, c.tailLog(qemuComponent, 15))
	case <-time.After(time.Second):
		return nil
	}
}

// qemuArgs is qemu's command line for the image in img.
func (c *Cluster) qemuArgs(img string) []string {
	return []string{
		"-name", VMNodeName,
		"-accel", "tcg", "-cpu", "max", "-smp", strconv.Itoa(vmCPUs), "-m", strconv.Itoa(vmMemoryMiB),
		"-display", "none", "-monitor", "none", "-no-reboot",
		"-kernel", filepath.Join(img, "vmlinuz"), "-initrd", filepath.Join(img, "initrd.img"),
		"-append", vmKernelArgs,
		"-drive", "file=" + c.vmStateDir("root.qcow2") + ",format=qcow2,if=virtio",
		"-drive", "file=" + c.vmStateDir("node.img") + ",format=raw,if=virtio,readonly=on",
		"-netdev", "tap,id=net0,ifname=" + VMTap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=net0,mac=" + vmMAC,
		"-chardev", "socket,id=qga0,path=" + c.GuestAgentSocket() + ",server=on,wait=off",
		"-device", "virtio-serial",
		"-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
		"-serial", "file:" + c.ConsoleLog(),
	}
}

// makeNodeDisk stages the node disk's files and makes an ext4 image of
// them (mkfs.ext4 -d: no loop device, no mount).
func (c *Cluster) makeNodeDisk(ctx context.Context) error {
	stage := c.vmStateDir("disk")
	cdir, err := c.containerdDir()
	if err != nil {
		return err
	}
	copies := map[string]string{
		c.bin("kubelet"):                               "bin/kubelet",
		c.bin("kube-proxy"):                            "bin/kube-proxy",
		filepath.Join(cdir, "containerd"):              "bin/containerd",
		filepath.Join(cdir, "containerd-shim-runc-v2"): "bin/containerd-shim-runc-v2",
		filepath.Join(cdir, "ctr"):                     "bin/ctr",
		c.pki.path("ca.crt"):                           "pki/ca.crt",
		c.pki.path("vm-kubelet.crt"):                   "pki/kubelet.crt",
		c.pki.path("vm-kubelet.key"):                   "pki/kubelet.key",
	}
	for _, ref := range imageRefs {
		copies[c.imageTar(ref)] = "images/" + filepath.Base(c.imageTar(ref))
	}
	for src, dst := range copies {
		if cerr := copyFile(src, filepath.Join(stage, dst)); cerr != nil {
			return cerr
		}
	}
	files := map[string]string{
		"setup.sh":                 vmSetupScript(),
		"etc/containerd.toml":      vmContainerdConfig(),
		"etc/10-oomsight.conflist": vmCNIConfig(),
		"etc/kubelet.yaml":         vmKubeletConfig(),
		"etc/kube-proxy.yaml":      vmKubeProxyConfig(),
	}
	for name, content := range vmUnits() {
		files["units/"+name] = content
	}
	for name, content := range files {
		if werr := writeFile(filepath.Join(stage, name), content); werr != nil {
			return werr
		}
	}
	for name, user := range map[string]string{"etc/kubelet.kubeconfig": "vm-kubelet", "etc/kube-proxy.kubeconfig": "kube-proxy"} {
		if kerr := c.pki.embeddedKubeconfig(filepath.Join(stage, name), APIServer, user); kerr != nil {
			return kerr
		}
	}
	size, err := treeSize(stage)
	if err != nil {
		return err
	}
	disk := c.vmStateDir("node.img")
	// ext4's metadata and some slack on top of the files.
	if err := os.Truncate(createEmpty(disk), size+size/5+64<<20); err != nil {
		return fmt.Errorf("node disk: %w", err)
	}
	if _, err := run(ctx, "mkfs.ext4", "-q", "-F", "-L", vmDiskLabel, "-d", stage, disk); err != nil {
		return err
	}
	return os.RemoveAll(stage)
}

// createEmpty creates an empty file (its error shows in Truncate's) and
// returns its path.
func createEmpty(path string) string {
	if f, err := os.Create(path); err == nil {
		_ = f.Close()
	}
	return path
}

// copyFile copies src to dst (made with its directories), keeping the
// executable bits.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("node disk: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("node disk: %w", err)
	}
	if merr := os.MkdirAll(filepath.Dir(dst), 0o755); merr != nil {
		return fmt.Errorf("node disk: %w", merr)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return fmt.Errorf("node disk: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("node disk: copy %s: %w", src, err)
	}
	return out.Close()
}

// treeSize adds up the sizes of the files below dir.
func treeSize(dir string) (int64, error) {
	var total int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("node disk: %w", err)
	}
	return total, nil
}

// waitVMReady waits until the VM's Node is Ready and setup.sh has imported
// the images, at most vmReadyTimeout
// from qemu's start. A timeout, or qemu's exit, is an error with the last
// lines of the kubelet's journal from the console (or, when the kubelet
// never started, the last lines of the console and the last step that
// setup.sh reached).
func (c *Cluster) waitVMReady(ctx context.Context) error {
	check := func() error {
		out, err := c.Kubectl(ctx, "get", "node", VMNodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "True" {
			return fmt.Errorf("node %s Ready=%q", VMNodeName, out)
		}
		// Pods that come after Up find their images in place.
		b, err := os.ReadFile(c.ConsoleLog())
		if err != nil {
			return fmt.Errorf("console: %w", err)
		}
		if step := setupStep(string(b)); !strings.HasPrefix(step, "done") {
			return fmt.Errorf("node %s Ready, setup.sh at step %q", VMNodeName, step)
		}
		return nil
	}
	deadline := c.vmStarted.Add(vmReadyTimeout)
	for {
		last := check()
		if last == nil {
			c.Log("k8s: vm: node %s Ready %.0f s after qemu started", VMNodeName, time.Since(c.vmStarted).Seconds())
			return nil
		}
		var exited <-chan struct{}
		if c.vmProc != nil {
			exited = c.vmProc.done
		}
		select {
		case <-exited:
			return fmt.Errorf("qemu exited (%v) before the node was Ready:\n%s", c.vmProc.cmd.ProcessState, c.vmJournalTail(20))
		case <-ctx.Done():
			return fmt.Errorf("waiting for Ready: %w", ctx.Err())
		case <-time.After(2 * time.Second):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not Ready after %.0f s: %w; %s", vmReadyTimeout.Seconds(), last, c.vmJournalTail(20))
		}
	}
}

// vmJournalTail is the kubelet's last journal lines on the console, or
// what the console shows when it has none.
func (c *Cluster) vmJournalTail(n int) string {
	b, err := os.ReadFile(c.ConsoleLog())
	if err != nil {
		return fmt.Sprintf("(no console log: %v)", err)
	}
	return describeConsole(string(b), n)
}

// stopVM stops qemu and removes the host's side of the link; the route
// through the bridge goes with it, the unreachable route is removed.
func (c *Cluster) stopVM(ctx context.Context) error {
	var errs []error
	if err := c.stopComponent(qemuComponent, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	for _, link := range []string{VMTap, VMBridge} {
		if _, err := os.Stat("/sys/class/net/" + link); err == nil {
			if _, err := run(ctx, "ip", "link", "del", link); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if out, err := run(ctx, "ip", "route", "show", "type", "unreachable", ClusterCIDR); err == nil && strings.TrimSpace(out) != "" {
		if _, err := run(ctx, "ip", "route", "del", "unreachable", ClusterCIDR); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// vmLeftovers lists what of the VM a stopped cluster must not leave.
func vmLeftovers() []string {
	var left []string
	for _, pid := range pids(func(pid int, cmdline string) bool {
		return isProcess(pid, qemuComponent) && strings.Contains(cmdline, StateDir)
	}) {
		left = append(left, fmt.Sprintf("process %d (%s)", pid, qemuComponent))
	}
	for _, link := range []string{VMTap, VMBridge} {
		if _, err := os.Stat("/sys/class/net/" + link); err == nil {
			left = append(left, "link "+link)
		}
	}
	if out, err := exec.Command("ip", "route", "show", "type", "unreachable", ClusterCIDR).Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		left = append(left, "route unreachable "+ClusterCIDR)
	}
	return left
}
