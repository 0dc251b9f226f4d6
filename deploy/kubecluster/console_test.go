// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster

import (
	"os"
	"strings"
	"testing"
)

// testdata/vm-console-ready.txt is the serial console of a real VM node
// (make k8s-up NODES=both, 2026-12-07) up to its Node's Ready: kernel
// lines, systemd's, the serial getty's prompt, setup.sh's steps and the
// kubelet's and containerd's journal, with the serial line's CRLF.
func readConsole(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/vm-console-ready.txt")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJournalLines(t *testing.T) {
	console := readConsole(t)
	kl := journalLines(console, "kubelet")
	if len(kl) < 100 {
		t.Fatalf("%d kubelet lines, want the run's (hundreds)", len(kl))
	}
	for _, l := range kl {
		if strings.Contains(l, "\r") || strings.HasPrefix(l, "[") || strings.Contains(l, "kubelet[") {
			t.Fatalf("line not stripped to its message: %q", l)
		}
	}
	if !strings.Contains(kl[0], "FLAG: --address=") {
		t.Errorf("first kubelet line %q, want its first flag", kl[0])
	}
	if last := kl[len(kl)-1]; !strings.Contains(last, "it just became ready") {
		t.Errorf("last kubelet line %q, want the node's Ready", last)
	}
	// containerd's lines are containerd's, none of them the kubelet's.
	for _, l := range journalLines(console, "containerd") {
		if strings.Contains(l, "kubelet_node_status") {
			t.Fatalf("a kubelet line among containerd's: %q", l)
		}
	}
	if got := setupStep(console); got != "done at 201.31 s" {
		t.Errorf("setupStep = %q, want the run's last step", got)
	}
}

// TestDescribeConsole: what a failed start says, at three points of the
// same real boot: before setup.sh, while it imports the images (the
// kubelet not started yet), and with the kubelet running.
func TestDescribeConsole(t *testing.T) {
	console := readConsole(t)
	cut := func(marker string) string {
		i := strings.Index(console, marker)
		if i < 0 {
			t.Fatalf("no %q in the console", marker)
		}
		return console[:i+len(marker)]
	}
	cases := []struct {
		name, console string
		want          []string
	}{
		{"before setup", cut("Reached target sysinit.target"), []string{"last setup step: (setup.sh never started)", "the kubelet logged nothing", "Reached target sysinit.target"}},
		{"importing images", cut("oomsight-node: images at 72.03 s"), []string{"last setup step: images at 72.03 s", "the kubelet logged nothing"}},
		{"kubelet running", console, []string{"last setup step: done at 201.31 s", "last lines of the kubelet's journal:", "it just became ready"}},
	}
	for _, tc := range cases {
		got := describeConsole(tc.console, 5)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
		if n := strings.Count(got, "\n"); n != 5 {
			t.Errorf("%s: %d lines after the summary, want 5:\n%s", tc.name, n, got)
		}
	}
}
