// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package kubecluster

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// testdata/qga-answers.jsonl are the answers of a real VM node's guest
// agent (qemu-guest-agent 7.2 of Debian 12) to guest-sync (id 12345 and
// 777), guest-exec and guest-exec-status of `echo hello`, of `sleep 1;
// echo out; echo err >&2; exit 3` and of `kill -9 $$`, and to a
// guest-exec-status of a pid that does not exist, in that order.
func TestDecodeQGA(t *testing.T) {
	f, err := os.Open("testdata/qga-answers.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, []byte(sc.Text()))
	}
	var finals []qgaExecStatus
	for _, l := range lines {
		var st qgaExecStatus
		if strings.Contains(string(l), `"exited": true`) {
			if err := decodeQGA("guest-exec-status", l, &st); err != nil {
				t.Fatal(err)
			}
			finals = append(finals, st)
		}
	}
	if len(finals) != 3 {
		t.Fatalf("%d finished commands in the capture, want 3", len(finals))
	}
	cases := []struct {
		out, errPart string
	}{
		{"hello\n", ""},
		{"out\n", "exit status 3: err"},
		{"", "killed by signal 9"},
	}
	for i, tc := range cases {
		out, err := finals[i].result("cmd")
		if out != tc.out {
			t.Errorf("command %d: stdout %q, want %q", i, out, tc.out)
		}
		switch {
		case tc.errPart == "" && err != nil:
			t.Errorf("command %d: %v", i, err)
		case tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart)):
			t.Errorf("command %d: error %v, want one with %q", i, err, tc.errPart)
		}
	}
	var pid struct {
		PID int `json:"pid"`
	}
	if err := decodeQGA("guest-exec", lines[1], &pid); err != nil || pid.PID != 577 {
		t.Errorf("guest-exec answer: pid %d, %v", pid.PID, err)
	}
	last := lines[len(lines)-1]
	if err := decodeQGA("guest-exec-status", last, &pid); err == nil || !strings.Contains(err.Error(), "GenericError: Invalid parameter 'pid'") {
		t.Errorf("error answer decoded as %v", err)
	}
	if err := decodeQGA("guest-exec", []byte(`{"return"`), &pid); err == nil {
		t.Error("a cut answer decoded")
	}
}
