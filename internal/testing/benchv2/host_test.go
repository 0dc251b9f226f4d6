// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package benchv2

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
	"github.com/oomsight/oomsight/internal/testing/qemuvm"
)

const (
	hostEnv = "OOMSIGHT_BENCH_V2" // "1" runs TestBenchV2
	tag     = "BENCHV2"           // the console lines of /init and of the workload
)

// config is one bench-v2 run: make bench-v2's values by default, set small
// by make bench-v2-short through the environment (TestBenchV2).
type config struct {
	cgroups       int    // cgroups of the scrape and fast pass benchmarks
	hostTime      string // -test.benchtime on the host
	vmTime        string // -test.benchtime in the VM (emulated: fewer rounds in more time)
	pinnedSeconds int    // the cgroup pinned at its limit, each side
	memMiB, cpus  int    // the VM
	vmTimeout     time.Duration
	binTimeout    string // -test.timeout of each benchmark binary
}

func configFromEnv(t *testing.T) config {
	c := config{
		cgroups: 250, hostTime: "6s", vmTime: "20s", pinnedSeconds: 10, memMiB: 2048, cpus: 2,
		vmTimeout: 20 * time.Minute, binTimeout: "15m",
	}
	num := func(name string, p *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive number", name, v)
			}
			*p = n
		}
	}
	num("OOMSIGHT_BENCH_CGROUPS", &c.cgroups)
	num("OOMSIGHT_BENCH_PINNED_SECONDS", &c.pinnedSeconds)
	num("OOMSIGHT_BENCHV2_MEM_MIB", &c.memMiB)
	num("OOMSIGHT_BENCHV2_CPUS", &c.cpus)
	secs := int(c.vmTimeout.Seconds())
	num("OOMSIGHT_BENCHV2_VM_TIMEOUT", &secs)
	c.vmTimeout = time.Duration(secs) * time.Second
	if v := os.Getenv("OOMSIGHT_BENCHV2_HOST_TIME"); v != "" {
		c.hostTime = v
	}
	if v := os.Getenv("OOMSIGHT_BENCHV2_VM_TIME"); v != "" {
		c.vmTime = v
	}
	return c
}

// benchRun is one benchmark binary run, the same on both hierarchies.
type benchRun struct {
	name  string // in the harness's own lines
	bin   string // the static test binary
	bench string // -test.bench
	kind  string // the BENCH line it must print
	env   []string
	// benchtime: "" for the side's (hostTime, vmTime), else fixed.
	benchtime string
}

// runs are make bench's BenchmarkScrape, BenchmarkFastPass and
// BenchmarkPinnedAtLimit on Kubernetes-shaped cgroups with a live process
// in each (cgrouptest.BenchSet), CI=true so that a missing prerequisite
// fails.
func (c config) runs() []benchRun {
	common := []string{"CI=true", cgrouptest.BenchPodsEnv + "=1", "OOMSIGHT_BENCH_CGROUPS=" + strconv.Itoa(c.cgroups)}
	return []benchRun{
		{name: "scrape", bin: "receiver.test", bench: "^BenchmarkScrape$", kind: "scrape", env: common},
		{name: "fast_pass", bin: "sampler.test", bench: "^BenchmarkFastPass$", kind: "sample_usage", env: common},
		{
			name: "pinned", bin: "receiver.test", bench: "^BenchmarkPinnedAtLimit$", kind: "pinned_at_limit", benchtime: "1x",
			env: []string{"CI=true", "OOMSIGHT_BENCH_PINNED_SECONDS=" + strconv.Itoa(c.pinnedSeconds)},
		},
	}
}

// args is the test binary's command line for r on a side.
func (r benchRun) args(benchtime, timeout string) []string {
	if r.benchtime != "" {
		benchtime = r.benchtime
	}
	return []string{"-test.run", "^$", "-test.bench", r.bench, "-test.benchtime", benchtime, "-test.timeout", timeout}
}

// TestBenchV2 builds the receiver's and the sampler's test binaries
// statically, runs their benchmarks on the host, then boots the VM with
// the memory controller on cgroup v1 and again on v2 and runs the same
// binaries there, and prints every BENCH line of the three (each names its
// hierarchy, and the harness adds on=host or on=vm) and a BENCH compare
// line per ratio. It fails when a run fails or a BENCH line is missing on
// any side.
//
// Environment: OOMSIGHT_BENCH_V2=1 to run; OOMSIGHT_BENCH_CGROUPS (250),
// OOMSIGHT_BENCH_PINNED_SECONDS (10), OOMSIGHT_BENCHV2_HOST_TIME (6s) and
// OOMSIGHT_BENCHV2_VM_TIME (20s) for -test.benchtime,
// OOMSIGHT_BENCHV2_MEM_MIB (2048), OOMSIGHT_BENCHV2_CPUS (2),
// OOMSIGHT_BENCHV2_VM_TIMEOUT (seconds, 1200); OOMSIGHT_E2E_KERNEL as for
// make e2e-v2.
func TestBenchV2(t *testing.T) {
	if os.Getenv(hostEnv) != "1" {
		cgrouptest.Unavailable(t, "bench-v2: set %s=1 to run it (make bench-v2); it needs root and apt-get", hostEnv)
	}
	c := configFromEnv(t)
	k := qemuvm.Prepare(t)
	dir := t.TempDir()
	bins := map[string]string{
		"receiver.test": "github.com/oomsight/oomsight/receiver/cgroupmemoryreceiver",
		"sampler.test":  "github.com/oomsight/oomsight/internal/sampler",
	}
	for bin, pkg := range bins {
		qemuvm.GoBuild(t, "test", "-c", "-o", filepath.Join(dir, bin), "-ldflags=-s -w", pkg)
	}
	memhog := qemuvm.Memhog(t, dir)
	runs := c.runs()

	// The host first, then the VM on v1, then on v2: never two at once,
	// each would slow the other down. The VM on v1 runs the same kernel
	// under the same emulation as on v2, so that the two differ only in
	// the hierarchy.
	sides := []*side{{name: "host"}, {name: "vm", hierarchy: "v1"}, {name: "vm", hierarchy: "v2"}}
	var problems []string
	sides[0].lines = map[string][]string{}
	for _, r := range runs {
		cmd := exec.Command(filepath.Join(dir, r.bin), r.args(c.hostTime, c.binTimeout)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append(r.env, cgrouptest.MemhogEnv+"="+memhog)...)
		out, err := cmd.CombinedOutput()
		sides[0].lines[r.name] = benchLines(out)
		if err != nil {
			t.Fatalf("host %s: %v\n%s", r.name, err, qemuvm.Tail(out, 60))
		}
	}
	var consoles []byte
	for _, sd := range sides[1:] {
		console, runErr := k.Boot(t, qemuvm.Boot{
			Tag:      tag,
			Workload: []byte(workload(runs, c)),
			Files: []qemuvm.File{
				{Name: "bin/receiver.test", Src: filepath.Join(dir, "receiver.test")},
				{Name: "bin/sampler.test", Src: filepath.Join(dir, "sampler.test")},
			},
			MemMiB: c.memMiB, CPUs: c.cpus,
			// The pinned writer rewrites a file of 3/4 of the disk's free
			// space: at least twice its cgroup's 64 MiB limit.
			DiskMiB: 256,
			Env:     []string{"CGROUP=" + sd.hierarchy},
			Timeout: c.vmTimeout,
			Console: filepath.Join(t.ArtifactDir(), "console-"+sd.hierarchy+".log"),
			Progress: func(line string) string {
				if i := strings.Index(line, tag+" "); i >= 0 {
					return line[i:]
				}
				return ""
			},
		})
		var p []string
		sd.lines, p = parseVM(console, runs, sd.label())
		problems = append(problems, p...)
		if runErr != nil {
			problems = append(problems, sd.label()+": "+runErr.Error())
		}
		consoles = append(consoles, console...)
	}

	for _, r := range runs {
		for _, sd := range sides {
			for _, l := range sd.lines[r.name] {
				fmt.Println(l + " on=" + sd.name)
			}
		}
	}
	for _, sd := range sides[1:] {
		for _, l := range sd.lines[memoryRun] {
			fmt.Println(l + " on=" + sd.name)
		}
	}
	for _, l := range compare(sides, runs) {
		fmt.Println(l)
	}
	for _, r := range runs {
		for _, sd := range sides {
			if !hasKind(sd.lines[r.name], r.kind) {
				problems = append(problems, fmt.Sprintf("%s %s printed no BENCH %s line", sd.label(), r.name, r.kind))
			}
			for _, l := range sd.lines[r.name] {
				if sd.hierarchy != "" && field(l, "hierarchy") != sd.hierarchy {
					problems = append(problems, fmt.Sprintf("%s: a line not on cgroup %s: %s", sd.label(), sd.hierarchy, l))
				}
			}
		}
	}
	if len(problems) > 0 {
		t.Logf("VM consoles:\n%s", qemuvm.Tail(consoles, 300))
		t.Fatalf("bench-v2 failed:\n- %s", strings.Join(problems, "\n- "))
	}
}

// side is where the runs ran: the host, or the VM with the memory
// controller on one hierarchy.
type side struct {
	name      string // "host" or "vm": the on= its lines get
	hierarchy string // the VM's ("v1", "v2"); "" on the host, whichever it has
	lines     map[string][]string
}

func (s *side) label() string {
	if s.hierarchy == "" {
		return s.name
	}
	return s.name + "-" + s.hierarchy
}

// workload is the VM's /workload.sh: each run between a RUN and an END
// line that carries its exit status.
func workload(runs []benchRun, c config) string {
	var b strings.Builder
	b.WriteString("#!/bin/busybox sh\n# make bench-v2's runs in the cgroup v2 VM (internal/testing/benchv2)\n")
	fmt.Fprintf(&b, "echo \"%s KERNEL $(uname -r) $(grep -E '^0::|memory' /proc/self/cgroup)\"\n", tag)
	// The lowest MemAvailable while the runs go, every 2 s with the shell's
	// builtins (no process a sample), to size the VM.
	b.WriteString(`lowest() { while :; do while read -r k v _; do [ "$k" = MemAvailable: ] && break; done </proc/meminfo
	[ -n "$min" ] && [ "$min" -le "$v" ] || { min=$v; echo "$min" >/tmp/lowest; }; sleep 2; done; }
lowest & lowpid=$!
`)
	for _, r := range runs {
		fmt.Fprintf(&b, "echo \"%s RUN %s\"\n", tag, r.name)
		fmt.Fprintf(&b, "env %s /bin/%s", strings.Join(r.env, " "), r.bin)
		for _, a := range r.args(c.vmTime, c.binTimeout) {
			fmt.Fprintf(&b, " '%s'", a)
		}
		fmt.Fprintf(&b, "\necho \"%s END %s exit=$?\"\n", tag, r.name)
	}
	fmt.Fprintf(&b, "kill $lowpid\necho \"%s RUN %s\"\n", tag, memoryRun)
	b.WriteString(`echo "BENCH vm_memory total_mib=$(($(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024))` +
		` lowest_available_mib=$(($(cat /tmp/lowest) / 1024)) hierarchy=${CGROUP:-v2}"` + "\n")
	fmt.Fprintf(&b, "echo \"%s END %s exit=$?\"\n", tag, memoryRun)
	return b.String()
}

// memoryRun is the VM's last run: a BENCH vm_memory line with the lowest
// MemAvailable seen during the others.
const memoryRun = "memory"

// parseVM takes the BENCH lines of each run from the console of the VM
// called name and says what went wrong: a run that did not end, or ended
// non-zero.
func parseVM(console []byte, runs []benchRun, name string) (map[string][]string, []string) {
	out := map[string][]string{}
	ended := map[string]string{}
	cur := ""
	var problems []string
	for line := range strings.SplitSeq(string(console), "\n") {
		line = strings.TrimRight(line, "\r")
		if i := strings.Index(line, tag+" "); i >= 0 {
			f := strings.Fields(line[i+len(tag)+1:])
			switch {
			case len(f) >= 2 && f[0] == "RUN":
				cur = f[1]
			case len(f) >= 3 && f[0] == "END":
				ended[f[1]] = f[2]
				cur = ""
			}
			continue
		}
		if l := benchLine(line); l != "" && cur != "" {
			out[cur] = append(out[cur], l)
		}
	}
	for _, r := range runs {
		switch st, ok := ended[r.name]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s %s did not end (timeout, panic or a VM that did not boot)", name, r.name))
		case st != "exit=0":
			problems = append(problems, fmt.Sprintf("%s %s ended with %s", name, r.name, st))
		}
	}
	return out, problems
}

// benchLines returns the BENCH lines of a benchmark's output.
func benchLines(out []byte) []string {
	var lines []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if l := benchLine(strings.TrimRight(line, "\r")); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// benchLine is the BENCH line in line (a console line may start with
// what the kernel or the firmware left there), or "".
func benchLine(line string) string {
	if i := strings.Index(line, "BENCH "); i >= 0 {
		return line[i:]
	}
	return ""
}

func hasKind(lines []string, kind string) bool {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 1 && f[1] == kind {
			return true
		}
	}
	return false
}

// field is the value of key=value in a BENCH line, or "".
func field(line, key string) string {
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// compare sets each ratio of the sides' lines beside each other:
// BENCH compare what=<kind>.<field> <side>_<hierarchy>=… for each side.
func compare(sides []*side, runs []benchRun) []string {
	fields := map[string][]string{
		"scrape":          {"ratio", "allocs_per_cgroup", "files", "stat_keys"},
		"sample_usage":    {"ratio"},
		"pinned_at_limit": {"ratio_to_workload", "limit_hits_per_s", "event_samples"},
	}
	var out []string
	for _, r := range runs {
		for _, f := range fields[r.kind] {
			line := fmt.Sprintf("BENCH compare what=%s.%s", r.kind, f)
			for _, sd := range sides {
				if l := lineOf(sd.lines[r.name], r.kind); l != "" {
					line += fmt.Sprintf(" %s_%s=%s", sd.name, field(l, "hierarchy"), field(l, f))
				}
			}
			out = append(out, line)
		}
	}
	return out
}

func lineOf(lines []string, kind string) string {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 1 && f[1] == kind {
			return l
		}
	}
	return ""
}

// TestParseVM: the BENCH lines of each run are taken between its RUN and
// END lines, whatever precedes them on the console line; a run without
// END or with a non-zero exit is a problem.
func TestParseVM(t *testing.T) {
	runs := []benchRun{{name: "scrape"}, {name: "fast_pass"}, {name: "pinned"}}
	console := []byte("SeaBIOS\r\nBENCHV2 INIT up 1.2s\r\n" +
		"BENCHV2 RUN scrape\r\n" +
		"[ 3.1] x BENCH scrape cgroups=250 ratio=2.10 hierarchy=v2\r\n" +
		"BenchmarkScrape/rounds-2  3  1 ns/op\r\n" +
		"BENCHV2 END scrape exit=0\r\n" +
		"BENCH stray before any run\r\n" +
		"BENCHV2 RUN fast_pass\r\n" +
		"BENCH sample_usage cgroups=250 ratio=1.3 hierarchy=v2\r\n" +
		"BENCHV2 END fast_pass exit=1\r\n" +
		"BENCHV2 RUN pinned\r\n")
	got, problems := parseVM(console, runs, "vm-v2")
	want := map[string][]string{
		"scrape":    {"BENCH scrape cgroups=250 ratio=2.10 hierarchy=v2"},
		"fast_pass": {"BENCH sample_usage cgroups=250 ratio=1.3 hierarchy=v2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines:\n got %q\nwant %q", got, want)
	}
	wantProblems := []string{"vm-v2 fast_pass ended with exit=1", "vm-v2 pinned did not end (timeout, panic or a VM that did not boot)"}
	if fmt.Sprint(problems) != fmt.Sprint(wantProblems) {
		t.Errorf("problems:\n got %q\nwant %q", problems, wantProblems)
	}
}

// TestCompare: each ratio of a kind's line on every side, named by the
// side and its hierarchy; other kinds' lines (scrape_files) are not taken
// for it.
func TestCompare(t *testing.T) {
	runs := []benchRun{{name: "scrape", kind: "scrape"}}
	sides := []*side{
		{name: "host", lines: map[string][]string{"scrape": {"BENCH scrape ratio=1.66 allocs_per_cgroup=80.0 files=5 stat_keys=42 hierarchy=v1"}}},
		{name: "vm", hierarchy: "v1", lines: map[string][]string{"scrape": {"BENCH scrape ratio=2.50 allocs_per_cgroup=80.0 files=5 stat_keys=40 hierarchy=v1"}}},
		{name: "vm", hierarchy: "v2", lines: map[string][]string{"scrape": {
			"BENCH scrape_files hierarchy=v2 files=memory.current,memory.stat",
			"BENCH scrape ratio=3.79 allocs_per_cgroup=95.5 files=5 stat_keys=47 hierarchy=v2",
		}}},
	}
	want := []string{
		"BENCH compare what=scrape.ratio host_v1=1.66 vm_v1=2.50 vm_v2=3.79",
		"BENCH compare what=scrape.allocs_per_cgroup host_v1=80.0 vm_v1=80.0 vm_v2=95.5",
		"BENCH compare what=scrape.files host_v1=5 vm_v1=5 vm_v2=5",
		"BENCH compare what=scrape.stat_keys host_v1=42 vm_v1=40 vm_v2=47",
	}
	if got := compare(sides, runs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestWorkload: the VM's script runs each benchmark between its RUN and
// END lines with the VM's benchtime, and quotes the arguments.
func TestWorkload(t *testing.T) {
	c := config{cgroups: 3, vmTime: "2x", pinnedSeconds: 1, binTimeout: "1m"}
	w := workload(c.runs(), c)
	for _, want := range []string{
		"echo \"BENCHV2 RUN scrape\"\nenv CI=true OOMSIGHT_BENCH_PODS=1 OOMSIGHT_BENCH_CGROUPS=3 /bin/receiver.test '-test.run' '^$' '-test.bench' '^BenchmarkScrape$' '-test.benchtime' '2x' '-test.timeout' '1m'\necho \"BENCHV2 END scrape exit=$?\"\n",
		"'-test.bench' '^BenchmarkPinnedAtLimit$' '-test.benchtime' '1x'",
		"OOMSIGHT_BENCH_PINNED_SECONDS=1 /bin/receiver.test",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("workload lacks %q:\n%s", want, w)
		}
	}
}
