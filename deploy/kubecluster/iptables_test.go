// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster

import (
	"slices"
	"testing"
)

// The lines are as iptables v1.8.9 (nf_tables) prints them with -S on
// this machine while the cluster runs (kube-router's and kube-proxy's
// jumps, a podman rule).
func TestRuleArgs(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`-A FORWARD -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD`,
			[]string{"-A", "FORWARD", "-m", "comment", "--comment", "kube-router netpol - TEMCG2JMHZYE7H7T", "-j", "KUBE-ROUTER-FORWARD"}},
		{`-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
			[]string{"-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES"}},
		{`-A FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD`,
			[]string{"-A", "FORWARD", "-m", "comment", "--comment", "netavark firewall plugin rules", "-j", "NETAVARK_FORWARD"}},
		{`-A OUTPUT -j KUBE-FIREWALL`, []string{"-A", "OUTPUT", "-j", "KUBE-FIREWALL"}},
		{`-A X -m comment --comment "a \"quoted\" word \\ here"  -j  Y`,
			[]string{"-A", "X", "-m", "comment", "--comment", `a "quoted" word \ here`, "-j", "Y"}},
		{`-A X --comment ""`, []string{"-A", "X", "--comment", ""}},
	} {
		got, err := ruleArgs(tc.line)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ruleArgs(%s) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, bad := range []string{`-A X --comment "open`, `-A X --comment "a\`} {
		if got, err := ruleArgs(bad); err == nil {
			t.Errorf("ruleArgs(%s) = %q, want an error", bad, got)
		}
	}
}

func TestKubeRouterSetNames(t *testing.T) {
	list := "KUBE-DST-VBH27M7NWLDOZIE4\nKUBE-SRC-4H6R6WAJ7RNQ7FJV\nmy-set\nKUBE-NODEPORT\nTMP-ABC\n"
	got := kubeRouterSetNames(list)
	want := []string{"KUBE-DST-VBH27M7NWLDOZIE4", "KUBE-SRC-4H6R6WAJ7RNQ7FJV"}
	if !slices.Equal(got, want) {
		t.Errorf("kubeRouterSetNames = %q, want %q", got, want)
	}
}
