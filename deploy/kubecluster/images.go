// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// image is one image the cluster imports into containerd: built here with
// podman from files staged in a context directory (FROM scratch), or, for
// the agent, taken from `make image`.
type image struct {
	ref        string
	files      map[string]string // context file name -> source path
	entrypoint string            // JSON array
}

// imageRefs are the images every node's containerd holds: nothing is
// pulled.
var imageRefs = []string{PauseImage, WorkloadImage, CoreDNSImage, AgentImage}

// imageDir holds the images as archives (podman save) between buildImages
// and the nodes' imports.
func (c *Cluster) imageDir() string { return c.path("images") }

// imageTar is the archive of ref in imageDir.
func (c *Cluster) imageTar(ref string) string {
	return filepath.Join(c.imageDir(), strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
}

// buildImages builds the cluster's own images (pause, workload, CoreDNS)
// and saves them with the agent's image as archives in imageDir, which
// importImages (the host's containerd) and the VM's node disk take.
func (c *Cluster) buildImages(ctx context.Context) error {
	dir := c.imageDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	workload := filepath.Join(dir, "workload")
	cmd := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", workload, "./e2ek8s/workload"}
	if _, err := runIn(ctx, filepath.Join(c.Root, "deploy"), []string{"CGO_ENABLED=0"}, "go", cmd...); err != nil {
		return err
	}
	images := []image{
		{ref: PauseImage, files: map[string]string{"workload": workload}, entrypoint: `["/workload", "pause"]`},
		{ref: WorkloadImage, files: map[string]string{"workload": workload}, entrypoint: `["/workload", "sleep"]`},
		{ref: CoreDNSImage, files: map[string]string{"coredns": c.bin("coredns")}, entrypoint: `["/coredns"]`},
	}
	for _, im := range images {
		if err := c.buildImage(ctx, dir, im); err != nil {
			return err
		}
	}
	if _, err := run(ctx, "podman", "image", "exists", AgentImage); err != nil {
		return fmt.Errorf("the agent image %s is not built (make image): %w", AgentImage, err)
	}
	for _, ref := range imageRefs {
		if _, err := run(ctx, "podman", "save", "--quiet", "--output", c.imageTar(ref), ref); err != nil {
			return err
		}
	}
	return os.Remove(workload)
}

// importImages imports the archives into the host's containerd, in the
// k8s.io namespace, where the CRI finds them.
func (c *Cluster) importImages(ctx context.Context) error {
	for _, ref := range imageRefs {
		if _, err := c.ctr(ctx, "images", "import", c.imageTar(ref)); err != nil {
			return err
		}
	}
	return nil
}

func (*Cluster) buildImage(ctx context.Context, dir string, im image) error {
	bctx := filepath.Join(dir, "context-"+strings.NewReplacer("/", "_", ":", "_").Replace(im.ref))
	if err := os.RemoveAll(bctx); err != nil {
		return fmt.Errorf("image context: %w", err)
	}
	if err := os.MkdirAll(bctx, 0o700); err != nil {
		return fmt.Errorf("image context: %w", err)
	}
	var cf strings.Builder
	cf.WriteString("FROM scratch\n")
	for name, src := range im.files {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("image %s: %w", im.ref, err)
		}
		if err := os.WriteFile(filepath.Join(bctx, name), b, 0o755); err != nil { //nolint:gosec // a program of the image: it must be executable
			return fmt.Errorf("image %s: %w", im.ref, err)
		}
		fmt.Fprintf(&cf, "COPY %s /%s\n", name, name)
	}
	fmt.Fprintf(&cf, "ENTRYPOINT %s\n", im.entrypoint)
	if err := os.WriteFile(filepath.Join(bctx, "Containerfile"), []byte(cf.String()), 0o600); err != nil {
		return fmt.Errorf("image %s: %w", im.ref, err)
	}
	if _, err := run(ctx, "podman", "build", "--quiet", "--tag", im.ref, "--file", filepath.Join(bctx, "Containerfile"), bctx); err != nil {
		return err
	}
	return os.RemoveAll(bctx)
}

// runIn is run with a working directory and extra environment.
func runIn(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := execCommand(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s (in %s): %w: %s", name, strings.Join(args, " "), dir, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
