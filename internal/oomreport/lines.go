// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

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
	// (4.x adds ", nodemask=…" after gfp_mask; 2.6.36–3.x ", oom_adj=…").
	reInvoked = regexp.MustCompile(`(?s)^(.*?) invoked oom-killer: (.*)$`)
	reGFP     = regexp.MustCompile(`(?:^|, )gfp_mask=([^,\s]+)`)
	reOrder   = regexp.MustCompile(`(?:^|, )order=(-?\d+)`)

	// "CPU: 0 PID: 1143 Comm: memhog Not tainted 6.1.0 …" (3.10+), 6.12+
	// adds "UID: 0 "; up to 3.9 x86 printed "Pid: 1143, comm: memhog Not
	// tainted 3.2.0 …".
	// The name is what comes before the last taint words (greedy: a name
	// may hold them too; the kernel's text after them never does).
	reCPU     = regexp.MustCompile(`(?s)^CPU: \d+ (?:UID: (-?\d+) )?PID: (\d+) Comm: (?:(.*) (?:Not tainted|Tainted:|Kdump:).*|(.*))$`)
	rePidComm = regexp.MustCompile(`(?s)^Pid: (\d+), comm: (.+?)(?: (?:Not tainted|Tainted:).*)?$`)

	// "memory: usage 65536kB, limit 65536kB, failcnt 3271" (2.6.31+),
	// "memory+swap: …" (v1, 2.6.31+), "kmem: …" (v1, 3.8+), "swap: …"
	// (cgroup v2).
	reUsage = regexp.MustCompile(`^(memory|memory\+swap|kmem|swap): usage (\d+)kB, limit (\d+)kB, failcnt (\d+)`)

	// "Memory cgroup stats for /path:" then the dump (5.3+), or the ≤5.2
	// one-line form "Memory cgroup stats for /path: cache:0KB rss:0KB …".
	reStatsFor = regexp.MustCompile(`(?s)^Memory cgroup stats for (.*?):(?: (.*))?$`)
	reStatKB   = regexp.MustCompile(`([a-z_][a-z0-9_]*):(\d+)KB`)
	reStatLine = regexp.MustCompile(`^([a-z_][a-z0-9_]*) (-?\d+)$`)

	reTasksState = regexp.MustCompile(`^Tasks state \(memory values in pages\):`)
	// "[  pid  ]   uid  tgid total_vm      rss … name" and its rows.
	reTaskHeader = regexp.MustCompile(`^\[\s*pid\s*\]\s+(.*\bname)\s*$`)
	reTaskRow    = regexp.MustCompile(`(?s)^\[\s*(\d+)\]\s+(.*)$`)
	// reTaskRowShape: a task row as isContextLine tells it, with its
	// numeric columns (uid tgid total_vm rss …) before the name, so that
	// "[12345] " in front of another line is not taken for one.
	reTaskRowShape = regexp.MustCompile(`^\[\s*\d+\](?:\s+-?\d+){4,}\s`)

	// "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=…,oom_memcg=/a,task_memcg=/a/b,task=x,pid=1,uid=0"
	// (5.0+; a kernel without memory cgroups prints neither memcg key).
	// mems_allowed and cpuset may hold commas, so the tail is anchored.
	reSummary  = regexp.MustCompile(`^oom-kill:constraint=([A-Z_]+),`)
	reSumTail  = regexp.MustCompile(`(?s)(?:,task_memcg=(.*?))?,task=(.*),pid=\s*(\d+),uid=\s*(-?\d+)\s*$`)
	reSumMemcg = regexp.MustCompile(`(?s),oom_memcg=(.*?),task_memcg=`)

	// The kill line, every form since 2.6.32:
	//   2.6.32:        "Killed process 1143 (memhog) vsz:…kB, anon-rss:…kB, file-rss:…kB"
	//   RHEL 6:        "Killed process 1143, UID 498, (memhog) total-vm:…kB, …"
	//   2.6.36–5.0:    "Killed process 1143 (memhog) total-vm:…kB, anon-rss:…kB, file-rss:…kB"
	//   4.5+:          ", shmem-rss:…kB" appended
	//   vendor 4.x:    "Killed process 1143 (memhog), UID 1000, total-vm:…"
	//   5.1+:          "Memory cgroup out of memory: Killed process 1143 (memhog) …"
	//   5.3+:          ", UID:0" appended; 5.5+: " pgtables:…kB oom_score_adj:…"
	// The prefix is one of the kernel's OOM messages (oom_kill_process's
	// message argument); anything else before "Killed process" is a log
	// prefix, which the line adapter takes off.
	reKilled = regexp.MustCompile(`(?s)^(?:(` + killPrefixes + `): )?Killed process (\d+)(?:, UID (\d+),)? \((.*)\)(?:, UID (\d+),)?(.*)$`)
	reKillKV = regexp.MustCompile(`([A-Za-z_-]+):(-?\d+)(kB)?`)
	// "Memory cgroup out of memory: Kill process 1143 (memhog) score 1000
	// or sacrifice child" (2.6.36–5.0); 2.6.32–2.6.35: "…: kill process
	// 1143 (memhog) score 1000 or a child".
	reKillOld = regexp.MustCompile(`(?s)^(?:(` + killPrefixes + `): )?[Kk]ill process (\d+) \((.*)\) score (-?\d+) or (?:sacrifice child|a child)`)
	// "Kill process 1150 (memhog) sharing same memory" (2.6.36–4.x): a
	// process that shared the victim's memory, killed with it.
	reKillShared = regexp.MustCompile(`(?s)^Kill process (\d+) \((.*)\) sharing same memory\s*$`)

	// "Task in /a/b killed as a result of limit of /a" (2.6.31–4.20);
	// printed in pieces (pr_cont), which another CPU's record may split.
	reTaskIn      = regexp.MustCompile(`(?s)^Task in (.+?) killed as a result of limit of (.+?)\s*$`)
	reTaskInStart = regexp.MustCompile(`(?s)^Task in (.+?)(?: killed)?\s*$`)
	reLimitOf     = regexp.MustCompile(`(?s)^(?:killed )?as a result of limit of (.+?)\s*$`)
	// "Memory limit reached of cgroup /a" (3.x–4.20: a memcg OOM report
	// printed before a victim was chosen).
	reLimitReached = regexp.MustCompile(`(?s)^Memory limit reached of cgroup (.+?)\s*$`)
	// "Tasks in /a are going to be killed due to memory.oom.group set" (4.19+)
	reGroup = regexp.MustCompile(`(?s)^Tasks in (.+) are going to be killed due to memory\.oom\.group set`)

	// "oom_reaper: reaped process 1143 (memhog), now anon-rss:0kB, …": the
	// aftermath of a kill, ignored (but it ends the wait for a group line).
	reReaper = regexp.MustCompile(`^oom_reaper: `)

	// "Memory cgroup out of memory: OOM victim 1143 (memhog) is already
	// exiting. Skip killing the task" (5.x/6.x): the report ends without a
	// kill.
	reSkip = regexp.MustCompile(`(?s)^(?:` + killPrefixes + `): OOM victim \d+ \(.*\) is already exiting\. Skip killing the task$`)

	reRAM     = regexp.MustCompile(`^(\d+) pages RAM$`)
	reMemInfo = regexp.MustCompile(`^Mem-Info:$`)
)

// Lines that show the logging kernel's architecture: the release in a
// stack dump's header ("5.14.0-284.el9.x86_64", "6.1.0-13-amd64"), x86's
// register and entry names, arm64's and ppc64's.
var (
	reX86   = regexp.MustCompile(`[.-](?:x86_64|amd64|i[3-6]86)\b|^(?:RIP|EIP): |\bentry_SYSCALL_64|\basm_exc_page_fault\b`)
	reArm64 = regexp.MustCompile(`[.-](?:aarch64|arm64)\b|\bel0t?_64_sync\b|^pc : `)
	rePPC   = regexp.MustCompile(`[.-]ppc64(?:le)?\b|^NIP: `)
)

// killPrefixes are the messages oom_kill_process has printed before a
// kill line since 2.6.32.
const killPrefixes = `Memory cgroup out of memory|Out of memory \(oom_kill_allocating_task\)|Out of memory`

// isKernelLine tells whether s is a line of an OOM report that says what
// it is by itself (as opposed to a stat line or a task row, which only
// the line before them explains).
func isKernelLine(s string) bool {
	s = strings.TrimLeft(s, " \t")
	if strings.Contains(s, " invoked oom-killer: ") {
		if m := reInvoked.FindStringSubmatch(s); len(m) > 1 && plausibleComm(m[1]) {
			return true
		}
	}
	for _, ru := range rules {
		if ru.starts && strings.Contains(s, ru.key) && ru.re.MatchString(s) {
			return true
		}
	}
	return false
}

// isContextLine tells whether s has the shape of a stat line or a task row.
func isContextLine(s string) bool {
	return reStatLine.MatchString(s) || reTaskRowShape.MatchString(s)
}

// kernelStart returns where in s, after a separator, a line of the rules
// that start with the kernel's fixed text begins, or -1.
func kernelStart(s string) int {
	var cands []*regexp.Regexp
	for _, ru := range rules {
		if ru.starts && strings.Contains(s, ru.key) {
			cands = append(cands, ru.re)
		}
	}
	if len(cands) == 0 {
		return -1
	}
	for i := 1; i < min(len(s), maxPrefix); i++ {
		if !strings.ContainsRune(" \t]\"|,;:", rune(s[i-1])) || !strings.ContainsRune("oMOKkmsTtCP[0123456789", rune(s[i])) {
			continue
		}
		rest := s[i:]
		for _, re := range cands {
			if re.MatchString(rest) {
				return i
			}
		}
	}
	return -1
}

// maxPrefix bounds where kernelStart looks: the prefixes log tools and
// exports put before a line are a few dozen bytes, and trying every rule
// at every place of a long line of garbage would take seconds.
const maxPrefix = 512

// maxComm is the longest task name the kernel prints (TASK_COMM_LEN 16,
// less the NUL).
const maxComm = 15

// plausibleComm tells whether s can be a task name as the kernel prints
// it: a longer one with blanks has a log prefix glued to it, which would
// leak into the trigger's name.
func plausibleComm(s string) bool {
	return s != "" && (len(s) <= maxComm || !strings.ContainsAny(s, " \t"))
}

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
	errs   []*ParseError    // values rejected (out of range)
}

// parseKilled parses a kill line from its reKilled match m (the
// assembler's rule has it: the regexp runs once per line).
func parseKilled(line string, m []string) (killLine, bool) {
	if m == nil {
		return killLine{}, false
	}
	pid, err := strconv.Atoi(m[2])
	if err != nil || pid > pidLimit {
		return killLine{errs: []*ParseError{newParseError(line, "kill line pid", m[2], reasonPID)}}, false
	}
	k := killLine{prefix: m[1], pid: pid, comm: m[4], vals: map[string]int64{}}
	for _, kv := range reKillKV.FindAllStringSubmatch(m[6], -1) {
		v, err := strconv.ParseInt(kv[2], 10, 64)
		if err != nil {
			k.errs = append(k.errs, newParseError(line, kv[1], kv[2]+kv[3], reasonRange))
			continue
		}
		if kv[3] != "" {
			var ok bool
			if v, ok = mulBytes(v, 1024); !ok {
				k.errs = append(k.errs, newParseError(line, kv[1], kv[2]+kv[3], reasonBytes))
				continue
			}
		}
		key := kv[1]
		if key == "vsz" {
			key = "total-vm" // 2.6.32's name for it
		}
		k.vals[key] = v
	}
	for _, uid := range []string{m[3], m[5]} { // the vendor kernels' ", UID N,"
		if v, err := strconv.ParseInt(uid, 10, 64); err == nil {
			k.vals["UID"] = v
		} else if uid != "" {
			k.errs = append(k.errs, newParseError(line, "UID", uid, reasonRange))
		}
	}
	return k, true
}

// taskColumns parses the task table header into column names; the first
// column is the pid in brackets.
func taskColumns(header string) []string {
	return append([]string{"pid"}, strings.Fields(header)...)
}

// parseTaskRow parses one task table row against the header's columns.
// The name is the last column, printed after one blank ("%5hd %s"): it is
// kept as it is, blanks and all. A row with a value out of range is
// rejected (perr says which).
func parseTaskRow(cols []string, pid, rest string, pageSize int64) (t Task, ok bool, perr *ParseError) {
	n := len(cols) - 1 // columns after pid
	if n < 2 {
		return Task{}, false, nil
	}
	row := rest
	var err error
	if t.PID, err = strconv.ParseInt(pid, 10, 64); err != nil || t.PID > pidLimit {
		return Task{}, false, newParseError(row, "task table pid", pid, reasonPID)
	}
	for _, col := range cols[1 : len(cols)-1] {
		rest = strings.TrimLeft(rest, " \t")
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			return Task{}, false, nil // no name after the numbers
		}
		field := rest[:end]
		v, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			if strings.Trim(field, "-0123456789") == "" {
				return Task{}, false, newParseError(row, "task table "+col, field, reasonRange)
			}
			return Task{}, false, nil
		}
		rest = rest[end+1:]
		switch col {
		case "rss":
			if t.RSS, ok = mulBytes(v, pageSize); !ok {
				return Task{}, false, newParseError(row, "task table rss", field, reasonBytes)
			}
		case "oom_score_adj":
			if v < -1000 || v > 1000 {
				return Task{}, false, newParseError(row, "task table oom_score_adj", field, reasonScoreAdj)
			}
			t.OOMScoreAdj = v
		}
	}
	t.Name = rest
	return t, true, nil
}
