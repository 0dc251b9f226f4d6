// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package identity

import (
	"strings"
	"testing"
)

const (
	uid    = "0f5eb28f-6722-4cf5-ab0f-b62748c018d4"
	uidU   = "0f5eb28f_6722_4cf5_ab0f_b62748c018d4" // systemd-escaped uid
	static = "3a1f2ee4f0b1c1d5e7a9b2c4d6e8f0a1"     // static pod config hash
	cid    = "0dc1822c5b0f2a7a9e3d4c6b8a0f1e2d3c4b5a6978877665544332211ffeeddc"
	uidB   = "7c1d3e5f-0a2b-4c6d-8e9f-a0b1c2d3e4f5" // a second pod
	uidBU  = "7c1d3e5f_0a2b_4c6d_8e9f_a0b1c2d3e4f5"
	cid2   = "9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64"
)

func TestFromPath(t *testing.T) {
	tests := []struct {
		name string
		path string
		want Identity
	}{
		// Real paths from kernel OOM reports.
		{
			"real cgroupfs burstable container",
			"/kubepods/burstable/podd11ab7b0-d6db-4a24-a7de-4a2faf1e6980/9f02d9fa0049eb2655fc83c765f142362b2cb403b57b70ba3185071015ca3b64",
			Identity{PodUID: "d11ab7b0-d6db-4a24-a7de-4a2faf1e6980", QOSClass: "Burstable", ContainerID: cid2},
		},
		{
			"real systemd containerd",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice/cri-containerd-2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc.scope",
			Identity{PodUID: "dfc377c9-c533-4d51-af9e-6e0e0b3db83b", QOSClass: "Burstable", ContainerID: "2260b35b008a15bd118e629c0c5d74e7f3a1fe18c724fbac61a54862fea196dc", Runtime: "containerd"},
		},
		{
			"real systemd pod slice",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddfc377c9_c533_4d51_af9e_6e0e0b3db83b.slice",
			Identity{PodUID: "dfc377c9-c533-4d51-af9e-6e0e0b3db83b", QOSClass: "Burstable"},
		},
		{
			"real cgroupfs burstable container 2",
			"/kubepods/burstable/podfbdfe8e3-1c87-4ff2-907c-b2ec8e25d012/ef807430361e6e82b45db92e2e9b6fbec98f419b12c591e655c1a725565e73a8",
			Identity{PodUID: "fbdfe8e3-1c87-4ff2-907c-b2ec8e25d012", QOSClass: "Burstable", ContainerID: "ef807430361e6e82b45db92e2e9b6fbec98f419b12c591e655c1a725565e73a8"},
		},
		{
			"real systemd docker",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0330b2c1_a15b_4cdd_b5e5_72d4a90bee82.slice/docker-b27201334a41cd0749d053b18378d7ea65617b8e26277197ea25c974da1a5a8a.scope",
			Identity{PodUID: "0330b2c1-a15b-4cdd-b5e5-72d4a90bee82", QOSClass: "Burstable", ContainerID: "b27201334a41cd0749d053b18378d7ea65617b8e26277197ea25c974da1a5a8a", Runtime: "docker"},
		},
		{
			"real cgroupfs pod",
			"/kubepods/burstable/pod0f5eb28f-6722-4cf5-ab0f-b62748c018d4",
			Identity{PodUID: uid, QOSClass: "Burstable"},
		},

		// cgroupfs driver.
		{
			"cgroupfs guaranteed container", "/kubepods/pod" + uid + "/" + cid,
			Identity{PodUID: uid, QOSClass: "Guaranteed", ContainerID: cid},
		},
		{
			"cgroupfs guaranteed pod", "/kubepods/pod" + uid,
			Identity{PodUID: uid, QOSClass: "Guaranteed"},
		},
		{
			"cgroupfs besteffort container", "/kubepods/besteffort/pod" + uid + "/" + cid,
			Identity{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid},
		},
		{
			"cgroupfs static pod uid", "/kubepods/burstable/pod" + static + "/" + cid,
			Identity{PodUID: static, QOSClass: "Burstable", ContainerID: cid},
		},
		{
			"cgroupfs crio", "/kubepods/burstable/pod" + uid + "/crio-" + cid,
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid, Runtime: "cri-o"},
		},
		{
			"cgroupfs crio conmon", "/kubepods/burstable/pod" + uid + "/crio-conmon-" + cid,
			Identity{PodUID: uid, QOSClass: "Burstable"},
		},
		{
			"cgroupfs trailing slash", "/kubepods/burstable/pod" + uid + "/" + cid + "/",
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		{
			"cgroupfs below container", "/kubepods/burstable/pod" + uid + "/" + cid + "/sub",
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		{"qos level alone", "/kubepods/burstable", Identity{}},
		{"kubepods alone", "/kubepods", Identity{}},
		{"qos without kubepods", "/foo/burstable/pod" + uid + "/" + cid, Identity{}},
		{"unknown qos", "/kubepods/gold/pod" + uid, Identity{}},
		{"docker plain", "/docker/" + cid, Identity{ContainerID: cid, Runtime: "docker"}},
		{"bare hex elsewhere", "/system.slice/" + cid, Identity{}},

		// systemd driver.
		{
			"systemd guaranteed", "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			Identity{PodUID: uid, QOSClass: "Guaranteed", ContainerID: cid, Runtime: "containerd"},
		},
		{
			"systemd guaranteed pod", "/kubepods.slice/kubepods-pod" + uidU + ".slice",
			Identity{PodUID: uid, QOSClass: "Guaranteed"},
		},
		{
			"systemd besteffort crio", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-" + cid + ".scope",
			Identity{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid, Runtime: "cri-o"},
		},
		{
			"systemd crio container sub-cgroup", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-" + cid + ".scope/container",
			Identity{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid, Runtime: "cri-o"},
		},
		{
			"systemd crio conmon", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-conmon-" + cid + ".scope",
			Identity{PodUID: uid, QOSClass: "Burstable"},
		},
		{
			"systemd static pod", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + static + ".slice",
			Identity{PodUID: static, QOSClass: "Burstable"},
		},
		{
			"systemd no leading slash", "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid, Runtime: "containerd"},
		},
		{"systemd qos slice alone", "/kubepods.slice/kubepods-burstable.slice", Identity{}},
		{"systemd bad qos", "/kubepods.slice/kubepods-gold.slice/kubepods-gold-pod" + uidU + ".slice", Identity{}},
		{"systemd pod without kubepods", "/foo.slice/foo-burstable-pod" + uidU + ".slice", Identity{}},
		{"systemd dashed uid", "/kubepods.slice/kubepods-pod" + uid + ".slice", Identity{}},
		{"docker systemd", "/system.slice/docker-" + cid + ".scope", Identity{ContainerID: cid, Runtime: "docker"}},
		{"podman", "/libpod-" + cid + ".scope", Identity{ContainerID: cid, Runtime: "podman"}},
		{"podman machine.slice", "/machine.slice/libpod-" + cid + ".scope", Identity{ContainerID: cid, Runtime: "podman"}},
		{"podman nested container", "/machine.slice/libpod-" + cid + ".scope/container", Identity{ContainerID: cid, Runtime: "podman"}},
		{"podman conmon", "/machine.slice/libpod-conmon-" + cid + ".scope", Identity{}},
		// podman's cgroupfs manager (no systemd), as seen under podman 4.3:
		// a container, and a container of a pod named by the pod's id.
		{"podman cgroupfs", "/libpod_parent/libpod-" + cid, Identity{ContainerID: cid, Runtime: "podman"}},
		{"podman cgroupfs pod member", "/libpod_parent/" + cid2 + "/libpod-" + cid, Identity{ContainerID: cid, Runtime: "podman"}},
		{"podman cgroupfs pod", "/libpod_parent/" + cid2, Identity{}},
		{"podman cgroupfs conmon", "/libpod_parent/" + cid2 + "/conmon", Identity{}},
		{"podman split cgroups", "/user.slice/app.slice/libpod-payload-" + cid, Identity{ContainerID: cid, Runtime: "podman"}},
		{"nerdctl", "/system.slice/nerdctl-" + cid + ".scope", Identity{ContainerID: cid, Runtime: "containerd"}},
		{
			"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + cid + ".scope",
			Identity{ContainerID: cid, Runtime: "podman"},
		},

		// Prefixed and nested hierarchies.
		{
			"kubelet cgroup root systemd", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid, Runtime: "containerd"},
		},
		{
			"kubelet cgroup root systemd guaranteed", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + uidU + ".slice",
			Identity{PodUID: uid, QOSClass: "Guaranteed"},
		},
		{
			"k3s", "/system.slice/k3s.service/kubepods/burstable/pod" + uid + "/" + cid,
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		{
			"process_api prefix", "/process_api/abc/kubepods/besteffort/pod" + uid + "/" + cid,
			Identity{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid},
		},
		{
			"kind node container", "/docker/" + cid2 + "/kubepods/burstable/pod" + uid + "/" + cid,
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		{
			"kind pod cgroup drops node container", "/docker/" + cid2 + "/kubepods/burstable/pod" + uid,
			Identity{PodUID: uid, QOSClass: "Burstable"},
		},
		{
			"kind node below container", "/docker/" + cid2 + "/kubepods/burstable",
			Identity{ContainerID: cid2, Runtime: "docker"},
		},
		{
			"kind systemd inside node", "/docker/" + cid2 + "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			Identity{PodUID: uid, QOSClass: "Guaranteed", ContainerID: cid, Runtime: "containerd"},
		},

		// A workload that can make cgroups inside its own (a nested node or
		// a container runtime in a privileged pod) names them like another
		// pod's: the kill is still attributed to the pod the kubelet made,
		// the first pod level below kubepods, and its container.
		{
			"nested pod names another pod cgroupfs", "/kubepods/burstable/pod" + uid + "/" + cid + "/kubepods/burstable/pod" + uidB + "/x",
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		{
			"nested pod and container cgroupfs", "/kubepods/burstable/pod" + uid + "/" + cid + "/kubepods/pod" + uidB + "/" + cid2,
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		{
			"nested pod right under pod", "/kubepods/besteffort/pod" + uid + "/kubepods/burstable/pod" + uidB + "/" + cid2,
			Identity{PodUID: uid, QOSClass: "BestEffort"},
		},
		{
			"nested systemd pod in systemd pod", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope/kubepods.slice/kubepods-pod" + uidBU + ".slice/cri-containerd-" + cid2 + ".scope",
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid, Runtime: "containerd"},
		},
		{
			"nested cgroupfs pod in systemd pod", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-" + cid + ".scope/kubepods/burstable/pod" + uidB,
			Identity{PodUID: uid, QOSClass: "BestEffort", ContainerID: cid, Runtime: "cri-o"},
		},
		{
			"nested container scope in container", "/kubepods/burstable/pod" + uid + "/" + cid + "/docker-" + cid2 + ".scope",
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},
		{
			"nested container below unknown level", "/kubepods/burstable/pod" + uid + "/sandbox/cri-containerd-" + cid2 + ".scope",
			Identity{PodUID: uid, QOSClass: "Burstable"},
		},
		{
			"kind node, nested pod in its pod", "/docker/" + cid2 + "/kubepods/burstable/pod" + uid + "/" + cid + "/kubepods/pod" + uidB + "/" + cid2,
			Identity{PodUID: uid, QOSClass: "Burstable", ContainerID: cid},
		},

		// Garbage.
		{"empty", "", Identity{}},
		{"root", "/", Identity{}},
		{"slashes", "////", Identity{}},
		{"init scope", "/init.scope", Identity{}},
		{"user session", "/user.slice/user-1000.slice/session-2.scope", Identity{}},
		{"short uid", "/kubepods/pod0f5eb28f", Identity{}},
		{"uid all dashes", "/kubepods/pod" + strings.Repeat("-", 34), Identity{}},
		{"uid uppercase", "/kubepods/pod" + strings.ToUpper(uid), Identity{}},
		{"uid too long", "/kubepods/pod" + uid + "-0", Identity{}},
		{"short bare id", "/kubepods/pod" + uid + "/0dc1822c", Identity{PodUID: uid, QOSClass: "Guaranteed"}},
		{"bare id not hex", "/kubepods/pod" + uid + "/" + strings.Repeat("z", 64), Identity{PodUID: uid, QOSClass: "Guaranteed"}},
		{"empty scope id", "/system.slice/docker-.scope", Identity{}},
		{"scope id not hex", "/system.slice/docker-containerd.scope", Identity{}},
		{"scope id too long", "/system.slice/docker-" + cid + "0.scope", Identity{}},
		{"dot dot", "/kubepods/burstable/../pod" + uid, Identity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromPath(tt.path); got != tt.want {
				t.Errorf("FromPath(%q)\n got %+v\nwant %+v", tt.path, got, tt.want)
			}
		})
	}
}

// FromPath runs once per discovered cgroup; keep it allocation-free apart
// from rewriting a systemd-escaped pod uid.
func TestFromPathAllocs(t *testing.T) {
	for path, want := range map[string]float64{
		"/kubepods/burstable/pod" + uid + "/" + cid: 0,
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope": 1,
	} {
		if got := testing.AllocsPerRun(100, func() { FromPath(path) }); got > want {
			t.Errorf("FromPath(%q): %v allocs, want <= %v", path, got, want)
		}
	}
}

func FuzzFromPath(f *testing.F) {
	for _, s := range []string{
		"", "/", "/kubepods/burstable",
		"/kubepods/burstable/pod" + uid + "/" + cid,
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
		"/docker/" + cid2 + "/kubepods/pod" + static + "/crio-conmon-" + cid,
		"/machine.slice/libpod-" + cid + ".scope/container",
		"-pod.slice", "kubepods-pod.slice/docker-.scope",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		id := FromPath(path)
		if id.QOSClass != "" && id.PodUID == "" {
			t.Errorf("FromPath(%q) = %+v: QOSClass without PodUID", path, id)
		}
		if id.PodUID != "" && id.QOSClass == "" {
			t.Errorf("FromPath(%q) = %+v: PodUID without QOSClass", path, id)
		}
		if id.Runtime != "" && id.ContainerID == "" {
			t.Errorf("FromPath(%q) = %+v: Runtime without ContainerID", path, id)
		}
	})
}
