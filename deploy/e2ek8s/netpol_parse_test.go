// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"os"
	"strings"
	"testing"
)

// testdata/workload-dial.txt is the workload's own output on the host,
// one address listening (socat TCP-LISTEN:38417,bind=127.0.0.1,fork
// /dev/null) and one not:
//
//	workload dial 127.0.0.1:38417 127.0.0.1:1
func TestParseDials(t *testing.T) {
	b, err := os.ReadFile("testdata/workload-dial.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	got, err := parseDials(out, []string{"127.0.0.1:38417", "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].open || got[1].open || got[1].reason != "connection refused" {
		t.Errorf("parseDials = %+v, want open, then closed by connection refused", got)
	}
	for _, tc := range []struct {
		name    string
		targets []string
	}{
		{"a line short", []string{"127.0.0.1:38417", "127.0.0.1:1", "127.0.0.1:2"}},
		{"another address", []string{"127.0.0.1:38417", "127.0.0.1:2"}},
		{"out of order", []string{"127.0.0.1:1", "127.0.0.1:38417"}},
	} {
		if r, err := parseDials(out, tc.targets); err == nil {
			t.Errorf("%s: parseDials = %+v, want an error", tc.name, r)
		}
	}
}

// testdata/iptables-save-netpol.txt is `iptables-save -c -t filter` during
// the netpol proof (make e2e-k8s): right after the intruders' six refused
// connections, counted on the two gateway pods' REJECT rules (1 and 5).
func TestRejectPackets(t *testing.T) {
	b, err := os.ReadFile("testdata/iptables-save-netpol.txt")
	if err != nil {
		t.Fatal(err)
	}
	save := string(b)
	gateways := []string{"oomsight-gateway-86d8f76656-ggztl", "oomsight-gateway-86d8f76656-spmvg"}
	for _, tc := range []struct {
		name      string
		namespace string
		pods      []string
		want      uint64
	}{
		{"both gateways", "oomsight", gateways, 6},
		{"one", "oomsight", gateways[1:], 5},
		{"a pod that refused nothing", "oomsight", []string{"oomsight-agent-bl9l5"}, 0},
	} {
		got, err := rejectPackets(save, tc.namespace, tc.pods)
		if err != nil || got != tc.want {
			t.Errorf("%s: rejectPackets = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	// No rule for the pods: not enforced, not zero.
	for _, tc := range []struct{ namespace, pod string }{
		{"oomsight-e2e", gateways[0]},
		{"oomsight", "oomsight-gateway-86d8f76656-ggztl-other"},
	} {
		if got, err := rejectPackets(save, tc.namespace, []string{tc.pod}); err == nil {
			t.Errorf("rejectPackets(%s/%s) = %d, want an error", tc.namespace, tc.pod, got)
		}
	}
	if got, err := rejectPackets(strings.ReplaceAll(save, "[5:300]", "[x:300]"), "oomsight", gateways); err == nil {
		t.Errorf("rejectPackets with a bad counter = %d, want an error", got)
	}
}
