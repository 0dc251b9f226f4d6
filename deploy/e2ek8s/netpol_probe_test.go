// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package e2ek8s

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// How the netpol proof tells a refused connection and whose refusal it
// was: the intruders' own dials (workload dial) and kube-router's REJECT
// counters.

// countRejects has every intruder dial every target once more and returns
// how many packets kube-router's REJECT rules of the gateway pods counted
// meanwhile: at least one per connection, or the refusal is not the
// policy's. kube-router rewrites its rules (iptables-restore, counters
// back to 0) at each sync, which any pod's change starts: a round that a
// sync interrupted is tried again.
func (e *env) countRejects(ctx context.Context, n *node, gateways, targets []string) (uint64, error) {
	want := uint64(len(intruders) * len(targets))
	var tries []string
	for range 5 {
		before, err := rejected(ctx, gateways)
		if err != nil {
			return 0, err
		}
		if _, werr := e.waitDials(ctx, n, targets, false); werr != nil {
			return 0, werr
		}
		after, err := rejected(ctx, gateways)
		if err != nil {
			return 0, err
		}
		if after >= before && after-before >= want {
			return after - before, nil
		}
		tries = append(tries, fmt.Sprintf("%d then %d", before, after))
	}
	return 0, fmt.Errorf("kube-router's REJECT rules of the gateway pods did not count the %d refused connections (packets before and after each round: %s): the refusal is not the policy's", want, strings.Join(tries, ", "))
}

// waitDials has every intruder dial every target, once a second for up to
// 60 s, until all are open (wantOpen) or all closed; it returns the
// reasons of the closed ones.
func (e *env) waitDials(ctx context.Context, n *node, targets []string, wantOpen bool) (string, error) {
	var reasons []string
	err := waitFor(ctx, 60*time.Second, "every intruder's connections "+map[bool]string{true: "open", false: "refused"}[wantOpen], func() error {
		reasons = reasons[:0]
		var wrong []string
		for _, pod := range intruders {
			out, err := e.kubectl(ctx, append([]string{"-n", n.ns, "exec", pod, "--", "/workload", "dial"}, targets...)...)
			if err != nil {
				return err
			}
			results, err := parseDials(out, targets)
			if err != nil {
				return fmt.Errorf("%s: %w", pod, err)
			}
			for _, r := range results {
				if r.open != wantOpen {
					wrong = append(wrong, pod+" → "+r.line)
				} else if !r.open {
					reasons = append(reasons, r.reason)
				}
			}
		}
		if len(wrong) > 0 {
			return errors.New(strings.Join(wrong, "; "))
		}
		return nil
	})
	return strings.Join(uniq(reasons), "; "), err
}

// dialResult is one line of `workload dial`.
type dialResult struct {
	line, reason string
	open         bool
}

// parseDials reads `workload dial`'s output: one line per target, in order.
func parseDials(out string, targets []string) ([]dialResult, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(targets) {
		return nil, fmt.Errorf("workload dial: %d lines for %d addresses: %q", len(lines), len(targets), out)
	}
	results := make([]dialResult, 0, len(lines))
	for i, line := range lines {
		switch {
		case line == targets[i]+" open":
			results = append(results, dialResult{line: line, open: true})
		case strings.HasPrefix(line, targets[i]+" closed: "):
			reason := strings.TrimPrefix(line, targets[i]+" closed: ")
			if j := strings.LastIndex(reason, ": "); j >= 0 {
				reason = reason[j+2:] // "dial tcp ...: connect: connection refused" -> "connection refused"
			}
			results = append(results, dialResult{line: line, reason: reason})
		default:
			return nil, fmt.Errorf("workload dial: line %d %q is not about %s", i+1, line, targets[i])
		}
	}
	return results, nil
}

func uniq(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// rejected sums the packet counters of kube-router's REJECT rules of the
// gateway pods (iptables-save -c of the filter table).
func rejected(ctx context.Context, gateways []string) (uint64, error) {
	out, err := exec.CommandContext(ctx, "iptables-save", "-c", "-t", "filter").Output()
	if err != nil {
		return 0, fmt.Errorf("iptables-save: %w", err)
	}
	return rejectPackets(string(out), "oomsight", gateways)
}

// rejectPackets sums the packets of the rules kube-router v2.1.0 writes
// last in a pod's firewall chain ("rule to REJECT traffic destined for
// POD name:<pod> namespace: <ns>") for the named pods, from
// `iptables-save -c` (each rule led by [packets:bytes]).
func rejectPackets(save, namespace string, pods []string) (uint64, error) {
	var sum uint64
	found := 0
	for line := range strings.SplitSeq(save, "\n") {
		if !strings.HasPrefix(line, "[") || !strings.Contains(line, " -j REJECT") {
			continue
		}
		for _, pod := range pods {
			if !strings.Contains(line, `"rule to REJECT traffic destined for POD name:`+pod+` namespace: `+namespace+`"`) {
				continue
			}
			end := strings.IndexByte(line, ':')
			if end < 0 {
				return 0, fmt.Errorf("iptables-save: no counters on %q", line)
			}
			n, err := strconv.ParseUint(line[1:end], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("iptables-save: counters of %q: %w", line, err)
			}
			sum += n
			found++
		}
	}
	if found == 0 {
		return 0, fmt.Errorf("no kube-router REJECT rule for pods %v of namespace %s in the filter table: the policy is not enforced", pods, namespace)
	}
	return sum, nil
}

// kubeRouterVersion is the version make kube-router built into the binary.
func (e *env) kubeRouterVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, e.repoPath("_build", "kube-router", "kube-router"), "--version").CombinedOutput()
	if err != nil {
		return "(version unknown)"
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "version" && i+1 < len(f) {
			return strings.TrimSuffix(f[i+1], ",")
		}
	}
	return "(version unknown)"
}
