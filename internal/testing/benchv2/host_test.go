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
	c := config{cgroups: 250, hostTime: "6s", vmTime: "20s", pinnedSeconds: 10, memMiB: 2048, cpus: 2,
		vmTimeout: 20 * time.Minute, binTimeout: "15m"}
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
// statically, runs their benchmarks on the host, then boots the cgroup v2
// VM and runs the same binaries there, and prints every BENCH line of both
// (each names its hierarchy) and a BENCH compare line per ratio. It fails
// when a run fails or a BENCH line is missing on either side.
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

	// The host first, then the VM: never both at once, each would slow the
	// other down.
	host := map[string][]string{}
	for _, r := range runs {
		cmd := exec.Command(filepath.Join(dir, r.bin), r.args(c.hostTime, c.binTimeout)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append(r.env, cgrouptest.MemhogEnv+"="+memhog)...)
		out, err := cmd.CombinedOutput()
		host[r.name] = benchLines(out)
		if err != nil {
			t.Fatalf("host %s: %v\n%s", r.name, err, qemuvm.Tail(out, 60))
		}
	}

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
		DiskMiB:  256,
		Timeout:  c.vmTimeout,
		Console:  filepath.Join(t.ArtifactDir(), "console.log"),
		Progress: func(line string) bool { return strings.Contains(line, tag+" ") },
	})
	vm, problems := parseVM(console, runs)
	if runErr != nil {
		problems = append(problems, runErr.Error())
	}

	for _, r := range runs {
		for _, side := range []map[string][]string{host, vm} {
			for _, l := range side[r.name] {
				fmt.Println(l)
			}
		}
	}
	for _, l := range compare(host, vm, runs) {
		fmt.Println(l)
	}
	for _, r := range runs {
		if !hasKind(host[r.name], r.kind) {
			problems = append(problems, fmt.Sprintf("host %s printed no BENCH %s line", r.name, r.kind))
		}
		if !hasKind(vm[r.name], r.kind) {
			problems = append(problems, fmt.Sprintf("VM %s printed no BENCH %s line", r.name, r.kind))
		}
		for _, l := range vm[r.name] {
			if field(l, "hierarchy") != "v2" {
				problems = append(problems, fmt.Sprintf("VM line not on cgroup v2: %s", l))
			}
		}
	}
	if len(problems) > 0 {
		t.Logf("VM console:\n%s", qemuvm.Tail(console, 200))
		t.Fatalf("bench-v2 failed:\n- %s", strings.Join(problems, "\n- "))
	}
}

// workload is the VM's /workload.sh: each run between a RUN and an END
// line that carries its exit status.
func workload(runs []benchRun, c config) string {
	var b strings.Builder
	b.WriteString("#!/bin/busybox sh\n# make bench-v2's runs in the cgroup v2 VM (internal/testing/benchv2)\n")
	fmt.Fprintf(&b, "echo \"%s KERNEL $(uname -r) $(cat /sys/fs/cgroup/cgroup.controllers)\"\n", tag)
	for _, r := range runs {
		fmt.Fprintf(&b, "echo \"%s RUN %s\"\n", tag, r.name)
		fmt.Fprintf(&b, "env %s /bin/%s", strings.Join(r.env, " "), r.bin)
		for _, a := range r.args(c.vmTime, c.binTimeout) {
			fmt.Fprintf(&b, " '%s'", a)
		}
		fmt.Fprintf(&b, "\necho \"%s END %s exit=$?\"\n", tag, r.name)
	}
	return b.String()
}

// parseVM takes the BENCH lines of each run from the VM's console and
// says what went wrong: a run that did not end, or ended non-zero.
func parseVM(console []byte, runs []benchRun) (map[string][]string, []string) {
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
			problems = append(problems, fmt.Sprintf("VM %s did not end (timeout, panic or a VM that did not boot)", r.name))
		case st != "exit=0":
			problems = append(problems, fmt.Sprintf("VM %s ended with %s", r.name, st))
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
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// compare sets each ratio of the host's lines beside the VM's:
// BENCH compare what=<kind>.<field> <host hierarchy>=… <VM hierarchy>=….
func compare(host, vm map[string][]string, runs []benchRun) []string {
	fields := map[string][]string{
		"scrape":          {"ratio", "allocs_per_cgroup", "files", "stat_keys"},
		"sample_usage":    {"ratio"},
		"pinned_at_limit": {"ratio_to_workload", "limit_hits_per_s", "event_samples"},
	}
	var out []string
	for _, r := range runs {
		h, v := lineOf(host[r.name], r.kind), lineOf(vm[r.name], r.kind)
		if h == "" || v == "" {
			continue
		}
		for _, f := range fields[r.kind] {
			out = append(out, fmt.Sprintf("BENCH compare what=%s.%s %s=%s %s=%s", r.kind, f,
				field(h, "hierarchy"), field(h, f), field(v, "hierarchy"), field(v, f)))
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
	got, problems := parseVM(console, runs)
	want := map[string][]string{
		"scrape":    {"BENCH scrape cgroups=250 ratio=2.10 hierarchy=v2"},
		"fast_pass": {"BENCH sample_usage cgroups=250 ratio=1.3 hierarchy=v2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines:\n got %q\nwant %q", got, want)
	}
	wantProblems := []string{"VM fast_pass ended with exit=1", "VM pinned did not end (timeout, panic or a VM that did not boot)"}
	if fmt.Sprint(problems) != fmt.Sprint(wantProblems) {
		t.Errorf("problems:\n got %q\nwant %q", problems, wantProblems)
	}
}

// TestCompare: each ratio of a kind's line on the host beside the VM's,
// named by their hierarchies; other kinds' lines (scrape_files) are not
// taken for it.
func TestCompare(t *testing.T) {
	runs := []benchRun{{name: "scrape", kind: "scrape"}, {name: "pinned", kind: "pinned_at_limit"}}
	host := map[string][]string{"scrape": {"BENCH scrape ratio=1.66 allocs_per_cgroup=80.0 files=5 stat_keys=70 hierarchy=v1"}}
	vm := map[string][]string{"scrape": {
		"BENCH scrape_files hierarchy=v2 files=memory.current,memory.stat",
		"BENCH scrape ratio=2.10 allocs_per_cgroup=95.5 files=5 stat_keys=50 hierarchy=v2",
	}}
	want := []string{
		"BENCH compare what=scrape.ratio v1=1.66 v2=2.10",
		"BENCH compare what=scrape.allocs_per_cgroup v1=80.0 v2=95.5",
		"BENCH compare what=scrape.files v1=5 v2=5",
		"BENCH compare what=scrape.stat_keys v1=70 v2=50",
	}
	if got := compare(host, vm, runs); fmt.Sprint(got) != fmt.Sprint(want) {
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
