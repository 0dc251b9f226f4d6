// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseNodeSet(t *testing.T) {
	cases := []struct {
		in      string
		want    NodeSet
		v1, v2  bool
		nodes   []string
		wantErr bool
	}{
		{in: "", want: V1Only, v1: true, nodes: []string{NodeName}},
		{in: "v1", want: V1Only, v1: true, nodes: []string{NodeName}},
		{in: "v2", want: V2Only, v2: true, nodes: []string{VMNodeName}},
		{in: "both", want: Both, v1: true, v2: true, nodes: []string{NodeName, VMNodeName}},
		{in: "v3", wantErr: true},
		{in: "Both", wantErr: true},
	}
	for _, tc := range cases {
		got, err := ParseNodeSet(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseNodeSet(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want || got.Has(V1) != tc.v1 || got.Has(V2) != tc.v2 {
			t.Errorf("ParseNodeSet(%q) = %q (v1 %v, v2 %v), %v; want %q (v1 %v, v2 %v)", tc.in, got, got.Has(V1), got.Has(V2), err, tc.want, tc.v1, tc.v2)
		}
		var names []string
		for _, n := range got.Nodes() {
			names = append(names, n.Name)
		}
		if !slices.Equal(names, tc.nodes) {
			t.Errorf("NodeSet(%q).Nodes() = %v, want %v", tc.in, names, tc.nodes)
		}
	}
}

// TestSteps: the VM's steps exist only with the VM, the host's kubelet
// only with the host, the VM is awaited before CoreDNS (which may run on
// it) and after the host's components (whose start its boot overlaps).
func TestSteps(t *testing.T) {
	cases := []struct {
		set  NodeSet
		want string
	}{
		{V1Only, "host files images etcd kube-apiserver kube-controller-manager kube-scheduler containerd images-import kubelet kube-proxy kube-router coredns"},
		{V2Only, "host files images vm-network vm-start etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy vm coredns"},
		{Both, "host files images vm-network vm-start etcd kube-apiserver kube-controller-manager kube-scheduler containerd images-import kubelet kube-proxy kube-router vm coredns"},
	}
	for _, tc := range cases {
		c := &Cluster{NodeSet: tc.set}
		var names []string
		for _, s := range c.steps() {
			names = append(names, s.name)
		}
		if got := strings.Join(names, " "); got != tc.want {
			t.Errorf("%s: steps\n %s\nwant\n %s", tc.set, got, tc.want)
		}
	}
}

// TestNodeConfigs decodes the rendered kubelet, kube-proxy and CNI configs
// and checks what makes each node what it is.
func TestNodeConfigs(t *testing.T) {
	decode := func(name, text string) map[string]any {
		t.Helper()
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			t.Fatalf("%s does not decode: %v\n%s", name, err, text)
		}
		return m
	}
	vmKubelet := decode("vm kubelet.yaml", vmKubeletConfig())
	for k, want := range map[string]any{"cgroupDriver": "systemd", "failCgroupV1": true, "address": VMIP, "containerRuntimeEndpoint": "unix://" + vmContainerdSocket, "tlsCertFile": "/opt/oomsight/pki/kubelet.crt"} {
		if vmKubelet[k] != want {
			t.Errorf("VM kubelet %s = %v, want %v", k, vmKubelet[k], want)
		}
	}
	c := &Cluster{NodeSet: Both, pki: &pki{dir: "/pki"}}
	hostKubelet := decode("host kubelet.yaml", c.kubeletConfig())
	for k, want := range map[string]any{"cgroupDriver": "cgroupfs", "failCgroupV1": false, "address": HostIP} {
		if hostKubelet[k] != want {
			t.Errorf("host kubelet %s = %v, want %v", k, hostKubelet[k], want)
		}
	}
	for name, tc := range map[string]struct {
		text, cidr, bind string
	}{
		"vm kube-proxy":         {vmKubeProxyConfig(), ClusterCIDR, VMIP},
		"host kube-proxy, both": {c.kubeProxyConfig(), ClusterCIDR, HostIP},
		"host kube-proxy, v1":   {(&Cluster{pki: &pki{dir: "/pki"}}).kubeProxyConfig(), PodCIDR, HostIP},
	} {
		m := decode(name, tc.text)
		if m["clusterCIDR"] != tc.cidr || m["bindAddress"] != tc.bind || m["mode"] != "iptables" {
			t.Errorf("%s: clusterCIDR %v bindAddress %v mode %v, want %s %s iptables", name, m["clusterCIDR"], m["bindAddress"], m["mode"], tc.cidr, tc.bind)
		}
	}
	// Pods route the Service range, and with the VM every node's pods,
	// through their node; nothing else (no default route).
	for name, tc := range map[string]struct {
		text, subnet string
		routes       []string
	}{
		"vm":         {vmCNIConfig(), VMPodCIDR, []string{ServiceCIDR, ClusterCIDR}},
		"host, both": {c.cniConfig(), PodCIDR, []string{ServiceCIDR, ClusterCIDR}},
		"host, v1":   {(&Cluster{}).cniConfig(), PodCIDR, []string{ServiceCIDR}},
	} {
		var conf struct {
			Plugins []struct {
				IPMasq bool `json:"ipMasq"`
				IPAM   struct {
					Ranges [][]struct {
						Subnet string `json:"subnet"`
					} `json:"ranges"`
					Routes []struct {
						Dst string `json:"dst"`
					} `json:"routes"`
				} `json:"ipam"`
			} `json:"plugins"`
		}
		if err := json.Unmarshal([]byte(tc.text), &conf); err != nil || len(conf.Plugins) != 1 {
			t.Fatalf("%s CNI config: %v\n%s", name, err, tc.text)
		}
		p := conf.Plugins[0]
		var routes []string
		for _, r := range p.IPAM.Routes {
			routes = append(routes, r.Dst)
		}
		if p.IPMasq || p.IPAM.Ranges[0][0].Subnet != tc.subnet || !slices.Equal(routes, tc.routes) {
			t.Errorf("%s CNI: masq %v subnet %s routes %v; want no masq, %s, %v", name, p.IPMasq, p.IPAM.Ranges[0][0].Subnet, routes, tc.subnet, tc.routes)
		}
	}
	cd := vmContainerdConfig()
	for _, want := range []string{"version = 3", "SystemdCgroup = true", `sandbox = "` + PauseImage + `"`, `bin_dirs = ["/usr/lib/cni"]`} {
		if !strings.Contains(cd, want) {
			t.Errorf("containerd config lacks %q:\n%s", want, cd)
		}
	}
	kubeletUnit := vmUnits()["kubelet.service"]
	if !strings.Contains(kubeletUnit, "--node-labels="+NodeLabel+"=v2") || !strings.Contains(kubeletUnit, "--hostname-override="+VMNodeName) {
		t.Errorf("kubelet unit does not name and label the node:\n%s", kubeletUnit)
	}
}

// TestVMImageKey: the key is the spec's, changes with any package or file
// and does not depend on the packages' order.
func TestVMImageKey(t *testing.T) {
	files := vmImageFiles()
	base := specKey(vmImageSpec(vmPackages, files))
	if len(base) != 12 || base != vmImageKey() {
		t.Fatalf("key %q, vmImageKey %q", base, vmImageKey())
	}
	reversed := slices.Clone(vmPackages)
	slices.Reverse(reversed)
	if k := specKey(vmImageSpec(reversed, files)); k != base {
		t.Errorf("the packages' order changed the key: %s != %s", k, base)
	}
	if k := specKey(vmImageSpec(append(slices.Clone(vmPackages), "strace"), files)); k == base {
		t.Error("a new package kept the key")
	}
	changed := vmImageFiles()
	changed["etc/hostname"] = "other\n"
	if k := specKey(vmImageSpec(vmPackages, changed)); k == base {
		t.Error("a changed file kept the key")
	}
}

// TestAptMirror reads this machine's own apt sources (Debian 12's deb822
// file), and the one-line format.
func TestAptMirror(t *testing.T) {
	u, err := hostMirror(vmSuite)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		t.Errorf("hostMirror = %q, want an http(s) URI", u)
	}
	cases := []struct {
		text   string
		deb822 bool
		want   string
	}{
		{"deb http://m/debian bookworm main\n", false, "http://m/debian"},
		{"deb [signed-by=/k.gpg arch=amd64] http://m/debian bookworm main contrib\n", false, "http://m/debian"},
		{"deb-src http://s/debian bookworm main\ndeb http://m/debian-security bookworm-security main\n", false, ""},
		{"Types: deb\nURIs: http://a/debian\nSuites: bookworm-updates\nComponents: main\n\nTypes: deb deb-src\nURIs: http://b/debian\nSuites: bookworm bookworm-updates\nComponents: main\n", true, "http://b/debian"},
		{"Types: deb\nURIs: http://a/debian\nSuites: bookworm\nComponents: contrib\n", true, ""},
	}
	for _, tc := range cases {
		if got := aptMirror(tc.text, tc.deb822, "bookworm"); got != tc.want {
			t.Errorf("aptMirror(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

// TestContainerdVersion reads the version make containerd2 builds from
// the module's real go.mod.
func TestContainerdVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "kube", "containerd", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := containerdVersion(string(b))
	if err != nil || !strings.HasPrefix(v, "v2.4.") {
		t.Errorf("containerdVersion = %q, %v; want v2.4.x", v, err)
	}
	if _, err := containerdVersion("module x\n\nrequire github.com/containerd/containerd v1.7.0\n"); err == nil {
		t.Error("containerd v1 taken for v2")
	}
}
