// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package resource sets the resource of a cgroup: one function shared by
// the metrics scraper and the OOM pipeline, so that a cgroup's metrics and
// its OOM records carry the same resource and join on cgroup.path.
package resource // import "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/resource"

import (
	"github.com/oomsight/oomsight/internal/identity"
	"github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver/internal/metadata"
)

// Set sets the resource attributes of a cgroup: its path and what the
// path tells about the pod and container.
func Set(rb *metadata.ResourceBuilder, path string, id identity.Identity) {
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
