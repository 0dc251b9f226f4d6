package oomreport

import (
	"regexp"
	"strconv"
	"strings"
)

// The lines of an OOM report, one regexp each. They are matched against a
// single line with the log prefix already removed. Kernel versions differ
// in optional fields, so the regexps capture what is common and the
// key:value tails are parsed separately.
var (
	// "memhog invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
	// (4.x adds ", nodemask=…" after gfp_mask).
	reInvoked = regexp.MustCompile(`^(.*?) invoked oom-killer: (.*)$`)
	reGFP     = regexp.MustCompile(`(?:^|, )gfp_mask=([^,\s]+)`)
	reOrder   = regexp.MustCompile(`(?:^|, )order=(-?\d+)`)

	// "CPU: 0 PID: 1143 Comm: memhog Not tainted 6.1.0 …", 6.12+ adds "UID: 0 ".
	reCPU = regexp.MustCompile(`^CPU: \d+ (?:UID: (-?\d+) )?PID: (\d+) Comm: (.+?)(?: (?:Not tainted|Tainted:|Kdump:).*)?$`)

	// "memory: usage 65536kB, limit 65536kB, failcnt 3271"
	reMemory = regexp.MustCompile(`^memory: usage (\d+)kB, limit (\d+)kB, failcnt (\d+)`)
	reKmem   = regexp.MustCompile(`^kmem: usage (\d+)kB, limit (\d+)kB, failcnt (\d+)`)

	// "Memory cgroup stats for /path:" then the dump (5.3+), or the ≤4.19
	// one-line form "Memory cgroup stats for /path: cache:0KB rss:0KB …".
	reStatsFor = regexp.MustCompile(`^Memory cgroup stats for (.*?):(?: (.*))?$`)
	reStatKB   = regexp.MustCompile(`([a-z_][a-z0-9_]*):(\d+)KB`)
	reStatLine = regexp.MustCompile(`^([a-z_][a-z0-9_]*) (-?\d+)$`)

	reTasksState = regexp.MustCompile(`^Tasks state \(memory values in pages\):`)
	// "[  pid  ]   uid  tgid total_vm      rss … name" and its rows.
	reTaskHeader = regexp.MustCompile(`^\[\s*pid\s*\]\s+(.*\bname)\s*$`)
	reTaskRow    = regexp.MustCompile(`^\[\s*(\d+)\]\s+(.*)$`)

	// "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=…,oom_memcg=/a,task_memcg=/a/b,task=x,pid=1,uid=0"
	// mems_allowed and cpuset may hold commas, so the tail is anchored.
	reSummary   = regexp.MustCompile(`^oom-kill:constraint=([A-Z_]+),`)
	reSumTail   = regexp.MustCompile(`,task_memcg=(.*?),task=(.*),pid=(\d+),uid=(-?\d+)\s*$`)
	reSumMemcg  = regexp.MustCompile(`,oom_memcg=(.*?),task_memcg=`)
	reSumGlobal = regexp.MustCompile(`,global_oom,task_memcg=`)

	// "Memory cgroup out of memory: Killed process 1143 (memhog) total-vm:1288364kB, …"
	reKilled  = regexp.MustCompile(`^(?:(.+?): )?Killed process (\d+) \((.*)\)(.*)$`)
	reKillKV  = regexp.MustCompile(`([A-Za-z_-]+):(-?\d+)(kB)?`)
	reKillOld = regexp.MustCompile(`^(?:(.+?): )?Kill process (\d+) \((.*)\) score (-?\d+) or sacrifice child`)

	// "Task in /a/b killed as a result of limit of /a" (≤5.2).
	reTaskIn = regexp.MustCompile(`^Task in (.+) killed as a result of limit of (.+?)\s*$`)
	// "Tasks in /a are going to be killed due to memory.oom.group set"
	reGroup = regexp.MustCompile(`^Tasks in (.+) are going to be killed due to memory\.oom\.group set`)

	// "oom_reaper: reaped process 1143 (memhog), now anon-rss:0kB, …": the
	// aftermath of a kill, ignored (but it ends the wait for a group line).
	reReaper = regexp.MustCompile(`^oom_reaper: `)

	// "Memory cgroup out of memory: OOM victim 1143 (memhog) is already
	// exiting. Skip killing the task" (5.x/6.x): the report ends without a
	// kill.
	reSkip = regexp.MustCompile(`: OOM victim \d+ \(.*\) is already exiting\. Skip killing the task$`)

	reRAM = regexp.MustCompile(`^(\d+) pages RAM$`)
)

// Prefixes of the kill line.
const (
	prefixMemcg  = "Memory cgroup out of memory"
	prefixGlobal = "Out of memory"
)

// killLine is a parsed "Killed process" line.
type killLine struct {
	prefix string
	pid    int
	comm   string
	vals   map[string]int64 // key as printed ("anon-rss", "UID"); kB already × 1024
}

func parseKilled(line string) (killLine, bool) {
	m := reKilled.FindStringSubmatch(line)
	if m == nil {
		return killLine{}, false
	}
	pid, err := strconv.Atoi(m[2])
	if err != nil {
		return killLine{}, false
	}
	k := killLine{prefix: m[1], pid: pid, comm: m[3], vals: map[string]int64{}}
	for _, kv := range reKillKV.FindAllStringSubmatch(m[4], -1) {
		v, err := strconv.ParseInt(kv[2], 10, 64)
		if err != nil {
			continue
		}
		if kv[3] != "" {
			v *= 1024
		}
		k.vals[kv[1]] = v
	}
	return k, true
}

// taskColumns parses the task table header into column names; the first
// column is the pid in brackets.
func taskColumns(header string) []string {
	return append([]string{"pid"}, strings.Fields(header)...)
}

// parseTaskRow parses one task table row against the header's columns.
// The name is the last column and may contain spaces.
func parseTaskRow(cols []string, pid, rest string, pageSize int64) (Task, bool) {
	f := strings.Fields(rest)
	n := len(cols) - 1 // columns after pid
	if n < 2 || len(f) < n {
		return Task{}, false
	}
	t := Task{Name: strings.Join(f[n-1:], " ")}
	var err error
	if t.PID, err = strconv.ParseInt(pid, 10, 64); err != nil {
		return Task{}, false
	}
	for i, col := range cols[1 : len(cols)-1] {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return Task{}, false
		}
		switch col {
		case "rss":
			t.RSS = v * pageSize
		case "oom_score_adj":
			t.OOMScoreAdj = v
		}
	}
	return t, true
}

func atoi64(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}
