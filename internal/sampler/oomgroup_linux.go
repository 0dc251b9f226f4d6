// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package sampler // import "github.com/oomsight/oomsight/internal/sampler"

import (
	"os"
	"path"
	"path/filepath"
	"strings"
)

// OOMGroupSet tells whether a kill in taskMemcg, at an OOM of memcg ("" for
// a system-wide one), starts a memory.oom.group kill: whether taskMemcg or
// an ancestor up to memcg has memory.oom.group set to 1 in the cgroup v2
// hierarchy at dir, as the kernel's mem_cgroup_get_oom_group looks for it.
// A file that cannot be read counts as unset. A kill whose cgroup is not
// known (taskMemcg "": the kernel rate-limited the report to its kill
// lines, the header and the oom-kill summary left out, while the group
// line and the members' kill lines still come) may be one: true, so that
// its record waits for the group line as a known group's does.
func OOMGroupSet(dir, taskMemcg, memcg string) bool {
	if taskMemcg == "" {
		return true
	}
	if !strings.HasPrefix(taskMemcg, "/") {
		return false
	}
	if memcg == "" {
		memcg = "/"
	}
	for p := path.Clean(taskMemcg); ; p = path.Dir(p) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p), "memory.oom.group"))
		if err == nil && strings.TrimSpace(string(b)) == "1" {
			return true
		}
		if p == memcg || p == "/" {
			return false
		}
	}
}
