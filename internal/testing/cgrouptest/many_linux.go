// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgrouptest // import "github.com/oomsight/oomsight/internal/testing/cgrouptest"

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Many creates n sibling cgroups below a parent cgroup named name, each
// charged with kib KiB of tmpfs memory (written from inside it by one shell
// that moves itself from cgroup to cgroup), and returns the parent. The
// files and cgroups are removed at cleanup.
func (env Env) Many(tb testing.TB, name string, n, kib int) *Cgroup {
	tb.Helper()
	parent := env.NewCgroup(tb, name)
	var script strings.Builder
	files := make([]string, n)
	for i := range n {
		c := env.NewCgroup(tb, fmt.Sprintf("%s/c%04d", name, i))
		files[i] = filepath.Join("/dev/shm", fmt.Sprintf("oomsight-%s-%d", strings.ReplaceAll(name, "/", "-"), i))
		fmt.Fprintf(&script, "echo $$ > %s/cgroup.procs && head -c %d /dev/zero > %s || exit 1\n", c.Dir, kib*1024, files[i])
	}
	tb.Cleanup(func() {
		for _, f := range files {
			_ = os.Remove(f)
		}
	})
	// The shell ends in the last cgroup; it exits, so the cgroups can go.
	cmd := exec.Command("sh", "-s")
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("charging %d cgroups: %v\n%s", n, err, out)
	}
	return parent
}
