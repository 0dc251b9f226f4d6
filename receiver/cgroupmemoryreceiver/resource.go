package cgroupmemoryreceiver

import (
	"math"

	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// setResource sets the resource attributes of a cgroup: its path and what
// the path tells about the pod and container. Metrics and OOM records of
// one cgroup carry the same resource, so that they join on cgroup.path.
func setResource(rb *metadata.ResourceBuilder, path string, id identity.Identity) {
	rb.SetCgroupPath(path)
	if id.PodUID != "" {
		rb.SetK8sPodUID(id.PodUID)
	}
	switch id.QOSClass {
	case identity.QOSGuaranteed:
		rb.SetK8sPodQosClassGuaranteed()
	case identity.QOSBurstable:
		rb.SetK8sPodQosClassBurstable()
	case identity.QOSBestEffort:
		rb.SetK8sPodQosClassBestEffort()
	}
	if id.ContainerID != "" {
		rb.SetContainerID(id.ContainerID)
	}
	switch id.Runtime {
	case "containerd":
		rb.SetContainerRuntimeNameContainerd()
	case "cri-o":
		rb.SetContainerRuntimeNameCriO()
	case "docker":
		rb.SetContainerRuntimeNameDocker()
	case "podman":
		rb.SetContainerRuntimeNamePodman()
	}
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
