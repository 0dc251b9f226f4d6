// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package e2ev2 is oomsight's cgroup v2 end-to-end test on a real kernel
// (`make e2e-v2`, see README.md in this directory).
//
// The build hosts expose the memory controller only on cgroup v1, so the
// test boots Debian's cloud kernel under qemu (software emulation) with an
// initramfs holding busybox, memhog and this package's own test binary, built
// statically. Two halves live in this package:
//
//   - the host side (TestCgroupV2InVM, host_test.go, runs with
//     OOMSIGHT_E2E_V2=1): installs the Debian packages it needs, builds the
//     binaries and the initramfs, boots the VM with a hard timeout and parses
//     the console;
//   - the VM side (TestVM*, vm_test.go, runs with OOMSIGHT_E2E_VM=1 as the
//     VM's workload): creates Kubernetes-shaped cgroups on cgroup v2, runs
//     memory workloads and OOM kills, and checks the project's real code
//     (cgroupfs reader, the cgroupmemory receiver through its factory, the
//     kmsg reader) against the kernel's own files.
//
// They talk through console lines (protocol_test.go):
//
//	E2EV2 KERNEL <uname -r>
//	E2EV2 MODE <cgroup mode and controllers>
//	E2EV2 CHECK <name> PASS|FAIL|PENDING <detail>
//	E2EV2 DONE exit=<test binary exit code>
//
// The package has no non-test code besides this comment.
package e2ev2 // import "github.com/oomsight/oomsight/internal/testing/e2ev2"
