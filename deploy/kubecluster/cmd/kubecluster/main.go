// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command kubecluster starts (`up`) and stops (`down`) the single-node
// Kubernetes of `make k8s-up` / `make k8s-down` (package kubecluster).
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
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: kubecluster up|down")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := kubecluster.New(func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecluster:", err)
		os.Exit(1)
	}
	if os.Args[1] == "down" {
		if err := c.Down(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "kubecluster down:", err)
			os.Exit(1)
		}
		return
	}
	if err := c.Up(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubecluster up:", err)
		fmt.Fprintln(os.Stderr, "(make k8s-down removes what was started)")
		os.Exit(1)
	}
	fmt.Printf("\nThe cluster runs. Use it with:\n\n  export KUBECONFIG=%s\n  %s get nodes\n  %s apply -f deploy/kubernetes/\n\nStop it with make k8s-down.\n",
		c.Kubeconfig(), c.KubectlPath(), c.KubectlPath())
}
