// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package survival

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecide is the rule, case by case.
func TestDecide(t *testing.T) {
	init := Process{PID: 10, Level: 2, NSInit: true}
	worker := Process{PID: 11, Level: 2}
	dying := func(p Process) Process { p.Dying = true; return p }
	for _, tc := range []struct {
		name string
		o    Observation
		want Verdict
	}{
		{"cgroup removed", Observation{Gone: true}, Ended},
		{"victim still there after the wait", Observation{VictimExited: false, Procs: []Process{init, worker}}, Unknown},
		{"worker killed, init and another worker run", Observation{VictimExited: true, Procs: []Process{init, worker}}, Survived},
		{"worker killed, init alone runs", Observation{VictimExited: true, Procs: []Process{init}}, Survived},
		{"init listed after the workers", Observation{VictimExited: true, Procs: []Process{worker, init}}, Survived},
		{"cgroup empty: the only process or the init was killed", Observation{VictimExited: true}, Ended},
		{"init killed, the rest being ended by the kernel", Observation{VictimExited: true, Procs: []Process{dying(worker)}}, Ended},
		{"init itself dying (tini after its child)", Observation{VictimExited: true, Procs: []Process{dying(init), worker}}, Ended},
		{"zombies only", Observation{VictimExited: true, Procs: []Process{dying(init), dying(worker)}}, Ended},
		{"no pid namespace of its own (hostPID, shared)", Observation{VictimExited: true, Procs: []Process{{PID: 5, Level: 1}}}, Unknown},
		{"shareProcessNamespace: the init is the pause container's", Observation{VictimExited: true, Procs: []Process{worker}}, Unknown},
		{"a nested namespace's init inside a container without its own", Observation{VictimExited: true, Procs: []Process{{PID: 5, Level: 2}, {PID: 6, Level: 3, NSInit: true}}}, Unknown},
		{"a nested namespace's init beside the container's", Observation{VictimExited: true, Procs: []Process{init, {PID: 6, Level: 3, NSInit: true}}}, Survived},
		{"the container's init dying, a nested init alive", Observation{VictimExited: true, Procs: []Process{dying(init), {PID: 6, Level: 3, NSInit: true}}}, Ended},
		{"kernel without NSpid", Observation{VictimExited: true, Procs: []Process{{PID: 5}, {PID: 6}}}, Unknown},
		{"truncated, none seen alive, no init among those seen", Observation{VictimExited: true, Truncated: true, Procs: []Process{dying(worker)}}, Unknown},
		{"truncated with the init seen", Observation{VictimExited: true, Truncated: true, Procs: []Process{init}}, Survived},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.o); got != tc.want {
				t.Errorf("Decide = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestParseStatus reads real status files (testdata/README.md).
func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Process
	}{
		{"init.status", Process{Level: 2, NSInit: true}},
		{"zombie.status", Process{Level: 1, Dying: true}},
		{"host.status", Process{Level: 1}},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseStatus(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.file, got, tc.want)
		}
	}
	// SIGKILL pending: the OOM killer's signal not yet taken.
	b, _ := os.ReadFile(filepath.Join("testdata", "init.status"))
	for _, key := range []string{"SigPnd", "ShdPnd"} {
		s := strings.Replace(string(b), key+":\t0000000000000000", key+":\t0000000000000100", 1)
		if s == string(b) {
			t.Fatalf("init.status has no empty %s", key)
		}
		got, err := ParseStatus([]byte(s))
		if err != nil || !got.Dying || !got.NSInit {
			t.Errorf("SIGKILL in %s: %+v %v, want dying init", key, got, err)
		}
	}
	for _, bad := range []string{"", "garbage", "Name:\tx\nSigPnd:\tzz\n"} {
		if _, err := ParseStatus([]byte(bad)); err == nil {
			t.Errorf("ParseStatus(%q): no error", bad)
		}
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Unknown: "unknown", Survived: "survived", Ended: "ended"} {
		if v.String() != want || v.Known() != (v != Unknown) {
			t.Errorf("%d: %q %v", v, v.String(), v.Known())
		}
	}
}
