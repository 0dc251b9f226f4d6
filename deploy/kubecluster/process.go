// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// components in the order they start; Down stops them in reverse.
var components = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet", "kube-proxy", "kube-router"}

// process is a started component.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs a component in a session of its own (it outlives `make
// k8s-up`), its output in its log file, its pid in StateDir/run.
func (c *Cluster) start(name, bin string, args ...string) (*process, error) {
	logf, err := os.OpenFile(c.LogFile(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin:"+filepath.Dir(c.bin("kubectl")))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := os.WriteFile(c.path("run", name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls check until it succeeds; a timeout or the process's exit
// is an error with the component's last log lines.
func (c *Cluster) waitReady(ctx context.Context, p *process, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited (%v) before %s: %w\n%s", p.cmd.ProcessState, what, last, c.tailLog(p.name, 25))
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not %s after %.0f s: %w\nlast lines of %s:\n%s", what, timeout.Seconds(), last, c.LogFile(p.name), c.tailLog(p.name, 25))
		}
	}
}

// tailLog returns the last n lines of a component's log.
func (c *Cluster) tailLog(name string, n int) string {
	b, err := os.ReadFile(c.LogFile(name))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// httpsGet checks that a TLS endpoint answers 200 on path, as the admin.
func (c *Cluster) httpsGet(url string, withClientCert bool) error {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(c.pki.path("ca.crt"))
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if withClientCert {
		cert, err := tls.LoadX509KeyPair(c.pki.path("admin.crt"), c.pki.path("admin.key"))
		if err != nil {
			return fmt.Errorf("admin certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	} else {
		// Components' own serving certificates are self-signed.
		cfg.InsecureSkipVerify = true // a loopback health check of a self-signed component
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	return httpGet(client, url)
}

func httpGet(client *http.Client, url string) error {
	resp, err := client.Get(url) //nolint:noctx // a short poll with the client's timeout
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(body.String()))
	}
	return nil
}

// stopComponent stops a component by the pid in its pid file: SIGTERM,
// then SIGKILL after grace. The pid is checked against the binary's name
// first, so that a reused pid is never signaled.
func (c *Cluster) stopComponent(name string, grace time.Duration) error {
	pidFile := c.path("run", name+".pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s pid file: %w", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s pid file: %w", name, err)
	}
	if isProcess(pid, name) {
		if err := killWait(pid, name, grace); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return os.Remove(pidFile)
}

// isProcess tells whether pid runs a binary whose name is name.
func isProcess(pid int, name string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == name
}

// killWait sends SIGTERM and waits up to grace for the process to go, then
// SIGKILL.
func killWait(pid int, name string, grace time.Duration) error {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for range 50 {
		if !alive(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("process %d (%s) did not exit after SIGKILL", pid, name)
}

// alive is false for a gone or zombie process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
