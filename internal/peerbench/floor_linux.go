// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package peerbench // import "github.com/oomsight/oomsight/internal/peerbench"

import "github.com/oomsight/oomsight/internal/cgroupfs"

// EqualOptional are the optional memory files the equal-work setup's
// metrics make the receiver read (EqualConfig: the kernel's usage,
// the lifetime peak, swap and the memsw limit, as cAdvisor exports them).
// The floor setup reads the files a collection reads with them
// (cgroupfs.Cgroup.ReadFiles); a receiver test holds it to what the
// receiver derives from EqualConfig.
const EqualOptional = cgroupfs.WithKernel | cgroupfs.WithLifetimePeak | cgroupfs.WithSwap | cgroupfs.WithSwapLimit
