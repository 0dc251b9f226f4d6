// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster // import "github.com/oomsight/oomsight/deploy/kubecluster"

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// VMExec runs a shell command inside the VM node, as root, through qemu's
// guest agent (qemu-guest-agent in the image, a virtio serial port to
// GuestAgentSocket on the host): no network login, no sshd in the image.
// It returns the command's standard output; a non-zero exit is an error
// with its standard error.
func (c *Cluster) VMExec(ctx context.Context, script string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.GuestAgentSocket())
	if err != nil {
		return "", fmt.Errorf("vm exec: guest agent: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	}
	g := &qga{conn: conn, r: bufio.NewReader(conn)}
	if err := g.sync(); err != nil {
		return "", fmt.Errorf("vm exec: %w", err)
	}
	var started struct {
		PID int `json:"pid"`
	}
	if err := g.call("guest-exec", map[string]any{"path": "/bin/sh", "arg": []string{"-c", script}, "capture-output": true}, &started); err != nil {
		return "", fmt.Errorf("vm exec %q: %w", script, err)
	}
	for {
		var st qgaExecStatus
		if err := g.call("guest-exec-status", map[string]any{"pid": started.PID}, &st); err != nil {
			return "", fmt.Errorf("vm exec %q: %w", script, err)
		}
		if st.Exited {
			return st.result(script)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("vm exec %q: %w", script, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// qga speaks the guest agent's protocol: one JSON object a line each way.
type qga struct {
	conn net.Conn
	r    *bufio.Reader
}

// sync discards what a previous client left unread: guest-sync echoes an
// id, and every answer before it is stale.
func (g *qga) sync() error {
	id := time.Now().UnixNano() & 0x7fffffff
	if err := g.send("guest-sync", map[string]any{"id": id}); err != nil {
		return err
	}
	for {
		line, err := g.r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("guest-sync: %w", err)
		}
		var resp struct {
			Return *int64 `json:"return"`
		}
		if json.Unmarshal(line, &resp) == nil && resp.Return != nil && *resp.Return == id {
			return nil
		}
	}
}

func (g *qga) send(cmd string, args any) error {
	b, err := json.Marshal(map[string]any{"execute": cmd, "arguments": args})
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if _, err := g.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// call sends a command and decodes its answer's "return" into out.
func (g *qga) call(cmd string, args, out any) error {
	if err := g.send(cmd, args); err != nil {
		return err
	}
	line, err := g.r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return decodeQGA(cmd, line, out)
}

// decodeQGA reads one answer of the guest agent: {"return": ...} or
// {"error": {"class": ..., "desc": ...}}.
func decodeQGA(cmd string, line []byte, out any) error {
	var resp struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("%s: bad answer %q: %w", cmd, line, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("%s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
	}
	if resp.Return == nil {
		return fmt.Errorf("%s: answer without return: %q", cmd, line)
	}
	if err := json.Unmarshal(resp.Return, out); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// qgaExecStatus is guest-exec-status's answer.
type qgaExecStatus struct {
	Exited   bool   `json:"exited"`
	ExitCode int    `json:"exitcode"`
	Signal   int    `json:"signal"`
	OutData  string `json:"out-data"`
	ErrData  string `json:"err-data"`
}

// result decodes the captured output (base64) and turns a failure into an
// error.
func (st qgaExecStatus) result(script string) (string, error) {
	out, err := base64.StdEncoding.DecodeString(st.OutData)
	if err != nil {
		return "", fmt.Errorf("vm exec %q: stdout: %w", script, err)
	}
	stderr, err := base64.StdEncoding.DecodeString(st.ErrData)
	if err != nil {
		return "", fmt.Errorf("vm exec %q: stderr: %w", script, err)
	}
	switch {
	case st.Signal != 0:
		return string(out), fmt.Errorf("vm exec %q: killed by signal %d: %s", script, st.Signal, stderr)
	case st.ExitCode != 0:
		return string(out), fmt.Errorf("vm exec %q: exit status %d: %s", script, st.ExitCode, stderr)
	}
	return string(out), nil
}
