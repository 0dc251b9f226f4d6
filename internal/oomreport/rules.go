// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import (
	"regexp"
	"strings"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// rule is one line of an OOM report: its regexp (lines.go) and what the
// Assembler does with a match. The same table tells which lines belong to
// a report (known) and where the kernel's text begins behind a log prefix
// (isKernelLine, kernelStart), so a new line is added in one place.
type rule struct {
	re *regexp.Regexp
	// starts: the line begins with the kernel's own fixed text, so that
	// the first place it matches in a prefixed line is where the kernel's
	// text begins (the invoked line begins with a task name; "Task in X"
	// and "as a result of limit of" alone are too loose to tell).
	starts bool
	// key is text every match contains, looked for before the regexp
	// runs: most records of a kernel log are no report's lines.
	key string
	// exact: the line begins with a task name, so a record read from
	// /dev/kmsg is matched with its leading blanks, which are the name's.
	exact bool
	// on handles a match (nil: part of a report, nothing to keep).
	on func(a *Assembler, r kmsg.Record, m []string, line string, out []*Report) []*Report
}

// rules in the order they are tried: the first that matches a line takes
// it. reSkip comes before reKilled (both follow the kernel's message).
var rules = []rule{
	{re: reInvoked, key: " invoked oom-killer: ", exact: true, on: (*Assembler).onInvoked},
	{re: reCPU, key: "CPU: ", starts: true, on: (*Assembler).onCPU},
	{re: rePidComm, key: "Pid: ", starts: true, on: (*Assembler).onPidComm},
	{re: reUsage, key: "usage ", starts: true, on: (*Assembler).onUsage},
	{re: reStatsFor, key: "Memory cgroup stats for ", starts: true, on: (*Assembler).onStatsFor},
	{re: reTasksState, key: "Tasks state ", starts: true, on: (*Assembler).onTasksState},
	{re: reTaskHeader, key: "pid", starts: true, on: (*Assembler).onTaskHeader},
	{re: reSummary, key: "oom-kill:", starts: true, on: (*Assembler).onSummary},
	{re: reSkip, key: "OOM victim ", starts: true, on: (*Assembler).onSkip},
	{re: reKilled, key: "Killed process ", starts: true, on: (*Assembler).onKilled},
	{re: reKillOld, key: "ill process ", starts: true, on: (*Assembler).onKillOld},
	{re: reTaskIn, key: "Task in ", starts: true, on: (*Assembler).onTaskIn},
	{re: reLimitReached, key: "Memory limit reached", starts: true, on: (*Assembler).onLimitReached},
	{re: reTaskInStart, key: "Task in ", on: (*Assembler).onTaskInStart},
	{re: reLimitOf, key: "as a result of limit of ", on: (*Assembler).onLimitOf},
	{re: reKillShared, key: "Kill process ", starts: true, on: (*Assembler).onKillShared},
	{re: reGroup, key: "Tasks in ", starts: true, on: (*Assembler).onGroup},
	{re: reMemInfo, key: "Mem-Info:", starts: true, on: (*Assembler).onMemInfo},
	{re: reRAM, key: " pages RAM", starts: true, on: (*Assembler).onRAM},
	{re: reReaper, key: "oom_reaper: ", starts: true},
}

func (ru rule) match(line string) []string {
	if !strings.Contains(line, ru.key) {
		return nil
	}
	return ru.re.FindStringSubmatch(line)
}

func (a *Assembler) onInvoked(r kmsg.Record, m []string, line string, out []*Report) []*Report {
	var c *draft
	out, c = a.restart(out)
	c.triggerName = m[1]
	if !r.HasSeq {
		c.triggerName = commOf(m[1]) // a paste: a log prefix may be glued to it
		c.triggerGuessed = true
	}
	if g := reGFP.FindStringSubmatch(m[2]); g != nil {
		c.gfpMask = g[1]
	}
	if o := reOrder.FindStringSubmatch(m[2]); o != nil {
		if v, ok := a.number(line, "order", o[1]); ok {
			c.order = new(v)
		}
	}
	return out
}

func (a *Assembler) onCPU(_ kmsg.Record, m []string, line string, out []*Report) []*Report {
	if m[3] == "" {
		return a.trigger(line, m[2], m[4], out) // no taint words after the name
	}
	return a.trigger(line, m[2], m[3], out)
}

func (a *Assembler) onPidComm(_ kmsg.Record, m []string, line string, out []*Report) []*Report {
	return a.trigger(line, m[1], m[2], out)
}

func (a *Assembler) onUsage(_ kmsg.Record, m []string, line string, out []*Report) []*Report {
	var c *draft
	out, c = a.fresh(out)
	var usage, failcnt *int64
	if v, ok := a.scaled(line, m[1]+" usage", m[2], 1024); ok {
		usage = new(v)
	}
	limit := a.limitOf(line, m[1]+" limit", m[3])
	switch m[1] {
	case "memory":
		if v, ok := a.number(line, "failcnt", m[4]); ok {
			failcnt = new(v)
		}
		c.usage, c.limit, c.failcnt = usage, limit, failcnt
		c.sawUsage = true
	case "memory+swap":
		c.memsw = usageLine{usage, limit}
	case "kmem":
		c.kmem = usageLine{usage, limit}
	case "swap":
		c.swap = usageLine{usage, limit}
	}
	a.mode = modeNone
	return out
}

func (a *Assembler) onStatsFor(_ kmsg.Record, m []string, line string, out []*Report) []*Report {
	var c *draft
	out, c = a.fresh(out)
	if c.stat == nil {
		c.stat, c.statPath = map[string]int64{}, m[1]
		c.statInferred = m[2] != "" && !c.sawUsage
	}
	a.mode = modeStats
	if m[2] != "" {
		// ≤4.19: one line per cgroup of the subtree, each with its
		// local counters; their sum is what the limit saw.
		a.mode = modeNone
		for _, kv := range reStatKB.FindAllStringSubmatch(m[2], -1) {
			if v, ok := a.scaled(line, "stat "+kv[1]+" (KB)", kv[2], 1024); ok {
				a.putStat(line, kv[1], v, true)
			}
		}
	}
	return out
}

func (a *Assembler) onTasksState(_ kmsg.Record, _ []string, _ string, out []*Report) []*Report {
	out, _ = a.fresh(out)
	a.mode, a.cols = modeTasks, nil
	return out
}

func (a *Assembler) onTaskHeader(_ kmsg.Record, m []string, _ string, out []*Report) []*Report {
	var c *draft
	out, c = a.fresh(out)
	a.mode, a.cols = modeTasks, taskColumns(m[1])
	c.table = newTaskTable(a.maxTasks, c.triggerName)
	return out
}

func (a *Assembler) onSummary(_ kmsg.Record, m []string, line string, out []*Report) []*Report {
	return a.summary(line, m[1], out)
}

func (a *Assembler) onSkip(_ kmsg.Record, _ []string, _ string, out []*Report) []*Report {
	// The victim was already dying: the kernel killed nobody, so the
	// report in progress ends without a record.
	if a.ctx != nil {
		a.ctx.killed = true
	}
	a.mode = modeNone
	return out
}

func (a *Assembler) onKilled(r kmsg.Record, m []string, line string, out []*Report) []*Report {
	k, ok := parseKilled(line, m)
	for _, e := range k.errs {
		if a.onError != nil {
			a.onError(e)
		}
	}
	if !ok {
		return out
	}
	return a.kill(r, k, out)
}

func (a *Assembler) onKillOld(_ kmsg.Record, m []string, line string, out []*Report) []*Report {
	pid, ok := a.pid(line, "kill process pid", m[2])
	if !ok {
		return out
	}
	var c *draft
	if a.ctx != nil && !a.ctx.killed && (a.ctx.oldVictim != nil || (a.ctx.hasSummary && a.ctx.sumPID != pid)) {
		// The context names another victim: it was a report of its
		// own whose kill line never came.
		out, c = a.restart(out)
	} else {
		out, c = a.fresh(out)
	}
	c.oldVictim = &killLine{prefix: m[1], pid: pid, comm: m[3]}
	a.mode = modeNone
	return out
}

func (a *Assembler) onTaskIn(_ kmsg.Record, m []string, _ string, out []*Report) []*Report {
	var c *draft
	out, c = a.fresh(out)
	c.taskMemcg, c.memcg, c.taskIn = m[1], m[2], true
	return out
}

func (a *Assembler) onLimitReached(_ kmsg.Record, m []string, _ string, out []*Report) []*Report {
	var c *draft
	out, c = a.fresh(out)
	c.memcg, c.taskIn = m[1], true
	return out
}

func (a *Assembler) onTaskInStart(_ kmsg.Record, m []string, _ string, out []*Report) []*Report {
	var c *draft
	out, c = a.fresh(out)
	c.taskMemcg, c.taskIn, c.taskInOpen = m[1], true, true
	return out
}

func (a *Assembler) onLimitOf(_ kmsg.Record, m []string, _ string, out []*Report) []*Report {
	if a.ctx != nil && a.ctx.taskInOpen {
		a.ctx.memcg, a.ctx.taskInOpen = m[1], false
	}
	return out
}

func (a *Assembler) onKillShared(r kmsg.Record, m []string, line string, out []*Report) []*Report {
	return a.shared(r, line, m[1], m[2], out)
}

func (a *Assembler) onGroup(_ kmsg.Record, m []string, _ string, out []*Report) []*Report {
	// A group line whose first kill was already released (Idle) or
	// lost: the kills that follow are still group kills.
	if a.ctx != nil {
		a.ctx.group = m[1]
		if a.ctx.groupPIDs == nil {
			if v := a.ctx.victim; v != nil {
				a.ctx.groupPIDs.add(v.PID) // reported already, alone
			}
		}
	}
	return out
}

func (a *Assembler) onMemInfo(_ kmsg.Record, _ []string, _ string, out []*Report) []*Report {
	a.mode = modeNone
	return out
}

func (a *Assembler) onRAM(_ kmsg.Record, m []string, line string, out []*Report) []*Report {
	var c *draft
	out, c = a.fresh(out)
	if v, ok := a.scaled(line, "pages RAM", m[1], a.pageSize); ok {
		c.ram = new(v)
	}
	return out
}
