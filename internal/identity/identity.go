// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package identity derives Kubernetes and container identity from a cgroup
// path, so that an OOM kill reported by the kernel (oom_memcg=, task_memcg=)
// or a cgroup found at discovery can be attributed to a pod and container
// without asking the kubelet or a container runtime.
//
// The path shapes are produced by the kubelet (cgroupfs and systemd cgroup
// drivers) and by the container runtimes; see FromPath for the rules.
package identity // import "github.com/oomsight/oomsight/internal/identity"

import "strings"

// Identity is what a cgroup path tells about the workload in it. Empty
// fields mean the path does not tell.
type Identity struct {
	PodUID      string // k8s.pod.uid, canonical form with dashes (systemd's underscores converted)
	QOSClass    string // k8s.pod.qos_class as Kubernetes spells it: "Guaranteed", "Burstable" or "BestEffort"; only set when PodUID is set
	ContainerID string // container.id (the full id as in the path, usually 64 hex)
	Runtime     string // container.runtime.name: "containerd", "cri-o", "docker", "podman"; empty when the path shape does not tell
}

// QoS class values, as the k8s.pod.qos_class attribute spells them.
const (
	QOSGuaranteed = "Guaranteed"
	QOSBurstable  = "Burstable"
	QOSBestEffort = "BestEffort"
)

// FromPath derives the identity of the workload owning the cgroup at path,
// relative to the hierarchy root as the kernel prints it. It never fails:
// a path it does not recognize yields an empty Identity.
//
// The path is not anchored at the root, because kubelets are often given a
// cgroup root of their own (/kubelet.slice/kubelet-kubepods.slice/...,
// /system.slice/k3s.service/kubepods/...) and kind/k3d nodes run inside a
// container (/docker/<id>/kubepods/...). Segments are read from the root
// down:
//   - the first pod segment (cgroupfs pod<uid> under kubepods[/burstable|/besteffort],
//     or a systemd ...kubepods[-qos]-pod<uid>.slice) starts the identity,
//     dropping any container seen above it: a container holding pods is a
//     nested node, not the workload;
//   - below a pod only the segment directly under it can name the container
//     (<runtime>-<id>[.scope], or a bare 64-hex id): that is where the
//     kubelet's runtime puts it;
//   - nothing deeper than that changes the identity: a workload that can make
//     cgroups inside its own (a nested node, a container runtime in a pod)
//     can name them like another pod's or container's, and a kill in them
//     is still its own pod's (a cgroup the kubelet made is never below
//     another pod's);
//   - above any pod, the deepest container segment wins (docker in docker);
//   - any other segment (conmon scopes, a container's own sub-cgroups such
//     as libpod-<id>.scope/container) belongs to what is above it.
func FromPath(path string) Identity {
	var (
		id          Identity
		prev, prev2 string // the two segments above seg, for cgroupfs pod parents
		prevIsPod   bool   // prev is the pod cgroup, so seg may be its container
		inPod       bool   // a pod segment was seen: its identity is final
	)
	for rest := path; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if seg == "" {
			continue // leading, trailing or doubled slash
		}
		isPod := false
		switch {
		case inPod && !prevIsPod:
			// Below the pod's own container level: the workload's own.
		case inPod:
			if cid, runtime, ok := containerSegment(seg, prev, true); ok {
				id.ContainerID, id.Runtime = cid, runtime
			}
		default:
			uid, qos, ok := podSegment(seg, prev, prev2)
			if ok {
				id, isPod, inPod = Identity{PodUID: uid, QOSClass: qos}, true, true
			} else if cid, runtime, ok := containerSegment(seg, prev, false); ok {
				id.ContainerID, id.Runtime = cid, runtime
			}
		}
		prev, prev2, prevIsPod = seg, prev, isPod
	}
	return id
}

// podSegment recognizes a pod cgroup. cgroupfs spells the hierarchy as
// directories (kubepods/burstable/pod<uid>, or kubepods/pod<uid> for
// guaranteed pods), so the parents are checked; systemd flattens it into the
// slice name (kubepods-burstable-pod<uid>.slice, with any kubelet cgroup root
// as a further prefix such as kubelet-kubepods-...) and escapes the uid's
// dashes as underscores.
func podSegment(seg, prev, prev2 string) (uid, qos string, ok bool) {
	if name, isSlice := strings.CutSuffix(seg, ".slice"); isSlice {
		i := strings.LastIndex(name, "-pod")
		if i < 0 {
			return "", "", false
		}
		raw := name[i+len("-pod"):]
		if !isPodUID(raw, '_') {
			return "", "", false
		}
		parent, grand := lastTwoComponents(name[:i])
		qos, ok = qosFrom(parent, grand)
		if !ok {
			return "", "", false
		}
		return strings.ReplaceAll(raw, "_", "-"), qos, true
	}
	raw, isPod := strings.CutPrefix(seg, "pod")
	if !isPod || !isPodUID(raw, '-') {
		return "", "", false
	}
	qos, ok = qosFrom(prev, prev2)
	if !ok {
		return "", "", false
	}
	return raw, qos, true
}

// qosFrom maps the names directly above a pod (directories or systemd name
// components) to its QoS class: guaranteed pods sit right under kubepods,
// the others under a kubepods/<qos> level.
func qosFrom(parent, grand string) (string, bool) {
	switch {
	case parent == "kubepods":
		return QOSGuaranteed, true
	case grand != "kubepods":
		return "", false
	case parent == "burstable": // the cgroup names are lower case
		return QOSBurstable, true
	case parent == "besteffort":
		return QOSBestEffort, true
	}
	return "", false
}

// lastTwoComponents splits the last two dash-separated components off a
// systemd unit name prefix ("kubelet-kubepods-burstable" gives "burstable",
// "kubepods").
func lastTwoComponents(name string) (last, before string) {
	name, last = cutLastComponent(name)
	_, before = cutLastComponent(name)
	return last, before
}

func cutLastComponent(name string) (head, last string) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

// runtimePrefixes are the unit/directory name prefixes the runtimes give
// container cgroups: systemd scopes (<prefix><id>.scope) and the same names
// without .scope under cgroupfs (cri-o's crio-<id>, podman's libpod-<id>).
// Their conmon scopes (crio-conmon-<id>, libpod-conmon-<id>) do not match
// because "conmon-<id>" is not a hex id.
var runtimePrefixes = [...]struct{ prefix, runtime string }{
	{"cri-containerd-", "containerd"},
	{"crio-", "cri-o"},
	{"docker-", "docker"},
	{"libpod-", "podman"},
	{"libpod-payload-", "podman"}, // podman --cgroups=split
	{"nerdctl-", "containerd"},    // nerdctl with the systemd cgroup manager
}

// containerSegment recognizes a container cgroup. A bare 64-hex name is
// only trusted where a runtime is known to put one: directly under a pod
// (cgroupfs kubelet; the runtime is not named) or under /docker.
func containerSegment(seg, prev string, parentIsPod bool) (id, runtime string, ok bool) {
	name := strings.TrimSuffix(seg, ".scope")
	for _, p := range runtimePrefixes {
		if rest, found := strings.CutPrefix(name, p.prefix); found && isContainerID(rest) {
			return rest, p.runtime, true
		}
	}
	if len(seg) != 64 || !isHex(seg) {
		return "", "", false
	}
	switch {
	case parentIsPod:
		return seg, "", true
	case prev == "docker":
		return seg, "docker", true
	}
	return "", "", false
}

// isContainerID accepts the ids runtimes print: lowercase hex, 64 long in
// practice; shorter ones are accepted where a runtime prefix already says
// the segment is a container.
func isContainerID(s string) bool {
	return len(s) >= 12 && len(s) <= 64 && isHex(s)
}

// isPodUID accepts a UUID (with sep where the dashes go) or the 32-hex
// config hash kubelet gives static pods, loosely: exactly 32 lowercase hex
// digits and at most 4 separators.
func isPodUID(s string, sep byte) bool {
	if len(s) < 32 || len(s) > 36 {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isHexByte(c):
			digits++
		case c != sep:
			return false
		}
	}
	return digits == 32
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
}
