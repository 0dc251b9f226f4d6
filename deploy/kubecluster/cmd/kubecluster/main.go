// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command kubecluster starts (`up`) and stops (`down`) the Kubernetes of
// `make k8s-up` / `make k8s-down` (package kubecluster), and builds the VM
// node's cached root filesystem (`vm-image`, make vmnode-image). NODES
// (v1, v2 or both; v1 when unset) picks the nodes `up` starts.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/oomsight/oomsight/deploy/kubecluster"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down" && os.Args[1] != "vm-image") {
		fmt.Fprintln(os.Stderr, "usage: [NODES=v1|v2|both] kubecluster up|down|vm-image")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1]))
}

// run does what main was asked and returns the exit code, so that its
// deferred signal handler is undone before the process exits.
func run(cmd string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := kubecluster.New(func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecluster:", err)
		return 1
	}
	if c.NodeSet, err = kubecluster.ParseNodeSet(os.Getenv("NODES")); err != nil {
		fmt.Fprintln(os.Stderr, "kubecluster:", err)
		return 2
	}
	if cmd == "vm-image" {
		if err = c.BuildVMImage(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "kubecluster vm-image:", err)
			return 1
		}
		return 0
	}
	if cmd == "down" {
		if err = c.Down(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "kubecluster down:", err)
			return 1
		}
		return 0
	}
	if err = c.Up(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubecluster up:", err)
		fmt.Fprintln(os.Stderr, "(make k8s-down removes what was started)")
		return 1
	}
	fmt.Print("\nThe cluster runs (nodes:")
	for _, n := range c.Nodes() {
		fmt.Printf(" %s %s=%s", n.Name, kubecluster.NodeLabel, n.Generation)
	}
	fmt.Printf("). Use it with:\n\n  export KUBECONFIG=%s\n  %s get nodes\n  %s apply -f deploy/kubernetes/\n\nStop it with make k8s-down.\n",
		c.Kubeconfig(), c.KubectlPath(), c.KubectlPath())
	return 0
}
