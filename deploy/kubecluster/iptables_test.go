// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// testdata/iptables-S-cluster.txt is `iptables -S` (v1.8.9, nf_tables) on
// this machine while the cluster ran with kube-router (make e2e-k8s);
// testdata/iptables-S-quotes.txt the same tool's printing of comments
// holding quotes, a backslash and nothing:
//
//	iptables -N OOMSIGHT-PROBE
//	iptables -A OOMSIGHT-PROBE -m comment --comment "a \"quoted\" word \\ here" -j RETURN
//	iptables -A OOMSIGHT-PROBE -m comment --comment "" -j RETURN
//	iptables -S OOMSIGHT-PROBE
func TestRuleArgs(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{
			`-A FORWARD -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD`,
			[]string{"-A", "FORWARD", "-m", "comment", "--comment", "kube-router netpol - TEMCG2JMHZYE7H7T", "-j", "KUBE-ROUTER-FORWARD"},
		},
		{
			`-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
			[]string{"-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES"},
		},
		{`-A OUTPUT -j KUBE-FIREWALL`, []string{"-A", "OUTPUT", "-j", "KUBE-FIREWALL"}},
		{
			`-A KUBE-POD-FW-AYUHHQHCAQFPPFKG -d 10.244.0.2/32 -m comment --comment "rule to permit the traffic traffic to pods when source is the pod\'s local node" -m addrtype --src-type LOCAL -j ACCEPT`,
			[]string{"-A", "KUBE-POD-FW-AYUHHQHCAQFPPFKG", "-d", "10.244.0.2/32", "-m", "comment", "--comment", "rule to permit the traffic traffic to pods when source is the pod's local node", "-m", "addrtype", "--src-type", "LOCAL", "-j", "ACCEPT"},
		},
		{
			`-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name  ct_state_invalid_dropped_pkts -j DROP`,
			[]string{"-A", "KUBE-FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-m", "nfacct", "--nfacct-name", "ct_state_invalid_dropped_pkts", "-j", "DROP"},
		},
		{
			`-A OOMSIGHT-PROBE -m comment --comment "a \"quoted\" word \\ here" -j RETURN`,
			[]string{"-A", "OOMSIGHT-PROBE", "-m", "comment", "--comment", `a "quoted" word \ here`, "-j", "RETURN"},
		},
		{
			`-A OOMSIGHT-PROBE -m comment --comment "" -j RETURN`,
			[]string{"-A", "OOMSIGHT-PROBE", "-m", "comment", "--comment", "", "-j", "RETURN"},
		},
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

// Every captured line splits into arguments that iptables would print
// back as the same line.
func TestRuleArgsRoundTrip(t *testing.T) {
	n := 0
	for _, f := range []string{"testdata/iptables-S-cluster.txt", "testdata/iptables-S-quotes.txt"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
			args, err := ruleArgs(line)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			quoted := make([]string, len(args))
			for i, a := range args {
				quoted[i] = a
				if a == "" || strings.ContainsAny(a, " \"\\'") {
					quoted[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`).Replace(a) + `"`
				}
			}
			// kube-proxy's nfacct match prints two blanks before its name.
			if got := strings.Join(quoted, " "); got != strings.ReplaceAll(line, "  ", " ") {
				t.Errorf("%s: %q split as %q", f, line, args)
			}
			n++
		}
	}
	if n < 100 {
		t.Errorf("%d lines read, want the captures' 150 and 3", n)
	}
}

// testdata/ipset-list-cluster.txt is `ipset list -n` while the cluster
// ran with the shipped policies.
func TestKubeRouterSetNames(t *testing.T) {
	b, err := os.ReadFile("testdata/ipset-list-cluster.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := kubeRouterSetNames(string(b) + "podman-set\nKUBEX-other\n")
	want := []string{"KUBE-DST-DYHPPRL4RLDXI3V2", "KUBE-DST-LZCGYCB6BAGBY5HR", "KUBE-SRC-OWVXYZGZK5H4EZVX"}
	if !slices.Equal(got, want) {
		t.Errorf("kubeRouterSetNames = %q, want %q", got, want)
	}
}
