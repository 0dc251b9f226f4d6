// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/oomsight/oomsight/internal/kmsg"
)

// holdLimit is how many unrelated records may pass between a kill line and
// the memory.oom.group line that belongs to it. The kernel prints the two
// back to back, but another CPU may log in between.
const holdLimit = 4

// Assembler assembles kernel log records into OOM reports. It is not safe
// for concurrent use; feed it the records of one log in order.
type Assembler struct {
	ctx *draft
	// held is a finished kill report kept back for one record: the kernel
	// prints "Tasks in X are going to be killed due to memory.oom.group
	// set" only after the first victim's kill line, and that victim is part
	// of the group kill too.
	held     *Report
	heldFor  int // unrelated records seen since held was set
	mode     mode
	cols     []string // task table columns
	pageSize int64    // bytes per page in the task table and the RAM line
	pageSet  bool     // pageSize was given (WithPageSize)
	arch     string   // the architecture the log shows, once seen
	maxTasks int      // task table rows a report keeps (WithMaxTasks)
	onError  func(*ParseError)
}

// usageLine is one of the memcg's usage lines (memory+swap, kmem, swap):
// usage and limit in bytes; limit nil when unlimited.
type usageLine struct {
	usage, limit *int64
}

// Option configures an Assembler.
type Option func(*Assembler)

// WithPageSize sets the kernel's page size, the unit of the task table's
// rss and of the "pages RAM" line. The default, DefaultPageSize, is right
// for amd64 and 4K-page arm64; 64K-page arm64 and ppc64le kernels print 16
// times fewer pages for the same memory.
func WithPageSize(n int64) Option {
	return func(a *Assembler) {
		if n > 0 {
			a.pageSize, a.pageSet = n, true
		}
	}
}

// WithMaxTasks sets how many task table rows a report keeps, largest rss
// first, in the kernel's order (Report.TasksOmitted counts the rest):
// DefaultMaxTasks unless told; -1 keeps all, which leaves a report's memory
// proportional to its table.
func WithMaxTasks(n int) Option {
	return func(a *Assembler) {
		if n > 0 || n == -1 {
			a.maxTasks = n
		}
	}
}

// maxStatKeys bounds the counters kept of a memcg stat dump: kernels print
// about 40 (v2) to 70 (v1 with total_*); the rest are rejected.
const maxStatKeys = 256

type mode int

const (
	modeNone  mode = iota
	modeStats      // inside a multi-line stat dump (5.3+)
	modeTasks      // inside the task table
)

// draft is what the report in progress has told so far (not named
// context: that would shadow the standard package).
type draft struct {
	// last is the newest record seen while this report was in progress:
	// a report whose kill line never came takes its sequence number and
	// time, so that a checkpoint can tell it was emitted.
	last    kmsg.Record
	hasLast bool

	triggerName string
	// triggerGuessed: triggerName is the invoked line's of a paste, whose
	// beginning a log prefix may share (commOf).
	triggerGuessed bool
	triggerPID     *int64
	gfpMask        string
	order          *int64

	usage, limit, failcnt *int64
	memsw, swap, kmem     usageLine
	sawUsage              bool // the "memory: usage" line came
	stat                  map[string]int64
	statPath              string
	// statInferred: statPath is the first one-line stat dump the log
	// shows, with no usage line before it. Up to 5.2 the kernel prints one
	// such line for the limiting cgroup and one for each descendant, so
	// in a report cut before its usage line the first one visible may be a
	// descendant's.
	statInferred bool
	statFull     bool // a counter past maxStatKeys was rejected
	table        *taskTable
	ram          *int64

	// oom-kill: summary (5.0+).
	hasSummary bool
	constraint string
	global     bool
	memcg      string
	taskMemcg  string
	sumTask    string
	sumPID     int
	sumUID     *int64

	// ≤4.19 "Task in X killed as a result of limit of Y" and "Kill process
	// P (comm) score S or sacrifice child".
	oldVictim *killLine
	taskIn    bool
	// taskInOpen: a "Task in X" whose " killed as a result of limit of
	// Y" went to another record.
	taskInOpen bool

	killed    bool   // a kill line completed this context
	group     string // the memory.oom.group cgroup, once announced
	groupPIDs pidSet // pids reported in this context's group kill
	// victim is the report of this context's first kill (the first victim
	// if a group kill follows), and victimAgain whether the group kill has
	// named it again (see repeatsVictim).
	victim      *Report
	victimAgain bool
}

// NewAssembler returns an Assembler with no report in progress.
func NewAssembler(opts ...Option) *Assembler {
	a := &Assembler{pageSize: DefaultPageSize, maxTasks: DefaultMaxTasks}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Add consumes one record and returns the reports it completed: normally
// one per "Killed process" line, reported with the record that follows it
// (which tells whether the kill was the start of a memory.oom.group kill).
// Records unrelated to OOM reports are ignored without losing the context.
func (a *Assembler) Add(r kmsg.Record) []*Report {
	var out []*Report
	for _, line := range recordLines(r.Message) {
		out = a.line(r, line, out)
	}
	if a.ctx != nil && !a.ctx.killed {
		a.ctx.last, a.ctx.hasLast = r, true
	}
	return out
}

// Release returns the kill report held back, if any, and drops the report
// in progress: what a reader with a checkpoint calls when it stops, so
// that a report cut short by the stop is assembled whole from the ring
// after the restart instead of being emitted twice, partial then whole.
func (a *Assembler) Release() []*Report {
	out := a.release(nil)
	a.ctx, a.mode = nil, modeNone
	return out
}

// Idle releases a kill report held back to see whether a memory.oom.group
// line follows it. A live reader calls it when the log has been quiet for
// a moment; unlike Flush it does not end the report in progress.
func (a *Assembler) Idle() []*Report {
	return a.release(nil)
}

// Held returns the kill report held back to see whether a memory.oom.group
// line follows it, or nil. A live reader that knows the victim's cgroup
// has memory.oom.group set may wait longer than usual before Idle.
func (a *Assembler) Held() *Report {
	return a.held
}

// Flush ends the input: it returns the held kill report and a report for a
// kill whose "Killed process" line never came (an oom-kill: summary or an
// old "Kill process" line seen without it), and forgets the context.
func (a *Assembler) Flush() []*Report {
	out := a.release(nil)
	out = a.abandon(out)
	a.ctx, a.mode = nil, modeNone
	return out
}

func (a *Assembler) release(out []*Report) []*Report {
	if a.held != nil {
		out = append(out, a.held)
		a.held, a.heldFor = nil, 0
	}
	return out
}

// abandon reports the context's kill when the kill line never came.
func (a *Assembler) abandon(out []*Report) []*Report {
	c := a.ctx
	if c == nil || c.killed {
		return out
	}
	var r *Report
	switch {
	case c.oldVictim != nil:
		r = c.report(*c.oldVictim)
	case c.hasSummary && c.sumPID > 0:
		r = c.report(killLine{pid: c.sumPID, comm: c.sumTask})
	default:
		return out
	}
	if c.hasLast {
		if c.last.HasSeq {
			r.Seq = new(c.last.Seq)
		}
		if c.last.HasMonotonic {
			r.Monotonic = new(c.last.Monotonic)
		}
		r.Time, r.TimeZoneUnknown = c.last.Time, c.last.TimeZoneUnknown
	}
	return append(out, r)
}

// fresh returns the context to add a header line to, starting a new one
// when there is none or the current one already ended in a kill, so that a
// report never inherits the previous kill's details.
func (a *Assembler) fresh(out []*Report) ([]*Report, *draft) {
	if a.ctx == nil || a.ctx.killed {
		a.ctx = &draft{}
	}
	return out, a.ctx
}

// restart starts a new context for a line that only opens a report (the
// invoked line, the oom-kill: summary when one was already seen).
func (a *Assembler) restart(out []*Report) ([]*Report, *draft) {
	out = a.abandon(out)
	a.ctx = &draft{}
	a.mode = modeNone
	return out, a.ctx
}

func (a *Assembler) line(r kmsg.Record, line string, out []*Report) []*Report {
	exact := line // a kernel record's text as printed, for the names at its ends
	line = strings.TrimRight(line, " \t\r")
	trimmed := strings.TrimLeft(line, " \t")
	if trimmed == "" {
		return out
	}
	if !r.HasSeq {
		// Text pasted from a log tool: its blanks at either end are the
		// tool's or the paste's, not the kernel's.
		exact = trimmed
	}
	if a.arch == "" {
		a.arch = archOf(trimmed)
	}
	// The rules are tried once per line (a log of kill lines alone spends
	// its time here): the held report's test and the handler share it.
	ru, m, l := matchRule(trimmed, exact)
	if a.held != nil {
		if m != nil && ru.re == reGroup {
			a.held.GroupKill = true
			if a.held.TaskMemcg == "" {
				// A kill line alone (its report rate-limited): the victim
				// is in the group's cgroup or below it, as every member.
				a.held.TaskMemcg = m[1]
			}
			a.ctx.group = m[1]
			a.ctx.groupPIDs = nil
			a.ctx.groupPIDs.add(a.held.PID)
			a.ctx.victim = a.held
			return a.release(out)
		}
		if m != nil { // known
			out = a.release(out)
		} else {
			a.heldFor++
			if a.heldFor > holdLimit {
				out = a.release(out)
			}
		}
	}
	if m != nil {
		if ru.on == nil {
			return out
		}
		return ru.on(a, r, m, l, out)
	}
	if a.ctx == nil || a.ctx.killed {
		return out
	}
	switch a.mode {
	case modeStats:
		if m := reStatLine.FindStringSubmatch(trimmed); m != nil {
			if v, ok := a.number(trimmed, "stat "+m[1], m[2]); ok {
				a.putStat(trimmed, m[1], v, false)
			}
		}
	case modeTasks:
		if m := reTaskRow.FindStringSubmatch(exact); m != nil && a.cols != nil {
			t, ok, perr := parseTaskRow(a.cols, m[1], m[2], a.pageSize)
			if perr != nil && a.onError != nil {
				perr.Line = cut(trimmed, maxErrLine)
				a.onError(perr)
			}
			if ok && a.ctx.table != nil {
				a.ctx.table.add(t)
			}
		}
	}
	return out
}

// recordLines returns the lines of one record's message. A record is one
// line, except the stat dump that kernels 5.3–6.3 print as one record of
// many lines. A task name may hold a newline too, which /dev/kmsg escapes
// exactly as it escapes the dump's (\x0a), so the message is cut only when
// every piece is a stat line ("key value"): the dump carries no names, and
// every line that carries one begins or ends with words of the kernel's
// own (the kill line, the summary, a task row), so no name can give its
// record that shape.
func recordLines(msg string) []string {
	if !strings.Contains(msg, "\n") {
		return []string{msg}
	}
	lines := strings.Split(msg, "\n")
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" && !reStatLine.MatchString(l) {
			return []string{msg}
		}
	}
	return lines
}

// putStat sets (or, sum, adds to) a counter of the stat dump, within
// maxStatKeys counters and int64.
func (a *Assembler) putStat(line, key string, v int64, sum bool) {
	c := a.ctx
	old, had := c.stat[key]
	if !had && len(c.stat) >= maxStatKeys {
		if !c.statFull {
			c.statFull = true
			a.reject(line, "stat "+key, key, fmt.Sprintf("more than %d counters in one stat dump; the rest are dropped", maxStatKeys))
		}
		return
	}
	if sum {
		var ok bool
		if v, ok = addBytes(old, v); !ok {
			a.reject(line, "stat "+key, strconv.FormatInt(v, 10), reasonSum)
			return
		}
	}
	c.stat[key] = v
}

// matchRule returns the first rule that matches the line, with its match
// (nil: none) and the form of the line it matched: exact for a rule whose
// line begins with a task name (the name's own leading blanks), trimmed
// otherwise. A line a rule matches is part of an OOM report (as opposed to
// an unrelated record interleaved with it).
func matchRule(trimmed, exact string) (rule, []string, string) {
	for _, ru := range rules {
		l := trimmed
		if ru.exact {
			l = exact
		}
		if m := ru.match(l); m != nil {
			return ru, m, l
		}
	}
	return rule{}, nil, ""
}

func (a *Assembler) summary(line, constraint string, out []*Report) []*Report {
	c := a.ctx
	if c == nil || c.killed || c.hasSummary {
		// A summary after a kill (or a second one) opens a new report
		// whose header was rate-limited away.
		out, c = a.restart(out)
	}
	c.hasSummary, c.constraint = true, constraint
	// global_oom only says no memcg was involved; a cpuset or mempolicy
	// OOM is not system-wide.
	c.global = constraint == "CONSTRAINT_NONE" && !strings.Contains(line, ",oom_memcg=")
	if m := reSumMemcg.FindStringSubmatch(line); m != nil {
		c.memcg = m[1]
	}
	if m := reSumTail.FindStringSubmatch(line); m != nil {
		c.taskMemcg, c.sumTask = m[1], m[2]
		c.sumPID, _ = a.pid(line, "oom-kill pid", m[3])
		if uid, ok := a.number(line, "oom-kill uid", m[4]); ok {
			c.sumUID = new(uid)
		}
	}
	a.mode = modeNone
	return out
}

func (a *Assembler) kill(r kmsg.Record, k killLine, out []*Report) []*Report {
	a.mode = modeNone
	c := a.ctx
	switch {
	case c != nil && c.killed && c.group != "" && c.repeatsVictim(k):
		return out
	case c != nil && c.killed && c.group != "" && c.member(k):
		c.groupPIDs.add(k.pid)
	case c == nil || c.killed:
		c = &draft{} // a kill whose header was rate-limited away
		a.ctx = c
	case !c.owns(k):
		out = a.abandon(out) // that report's kill line never came
		c = &draft{}
		a.ctx = c
	}
	c.killed = true
	rep := c.report(k)
	if r.HasSeq {
		rep.Seq = new(r.Seq)
	}
	if r.HasMonotonic {
		rep.Monotonic = new(r.Monotonic)
	}
	rep.Time, rep.TimeZoneUnknown = r.Time, r.TimeZoneUnknown
	if c.group != "" {
		rep.GroupKill = true
		return append(out, rep)
	}
	out = a.release(out)
	a.held = rep
	c.victim = rep
	return out
}

// owns tells whether kill line k ends the report in context c rather than
// belonging to another report (the input skipped lines, or pasted pieces of
// several reports). Up to 5.0 the kernel printed "Kill process P … or
// sacrifice child" and then a bare "Killed process C" for P or a child C;
// from 5.1 the kill line carries the prefix and names the summary's task,
// or one of its threads (same name) when the main thread has already left.
func (c *draft) owns(k killLine) bool {
	if c.oldVictim != nil && k.prefix != "" {
		return false
	}
	// Only a summary whose task and pid were printed in full can disown a
	// kill line (a truncated summary leaves them unknown).
	if c.hasSummary && c.sumPID > 0 && k.prefix != "" && k.pid != c.sumPID && k.comm != c.sumTask {
		return false
	}
	return true
}

// member tells whether kill line k can belong to the group kill in c: the
// task table lists every process of the cgroup at the time of the OOM, so
// a pid missing from it is a later kill whose header was rate-limited away
// or lost, not a member (without a table nothing can tell).
func (c *draft) member(k killLine) bool {
	return !c.hasTable() || c.table.listed(int64(k.pid))
}

// hasTable tells whether the report has a task table with a row.
func (c *draft) hasTable() bool {
	return c.table != nil && c.table.seen > 0
}

// inTasks tells whether the task table lists pid.
func inTasks(tasks []Task, pid int64) bool {
	return slices.ContainsFunc(tasks, func(t Task) bool { return t.PID == pid })
}

// repeatsVictim tells whether kill line k of a group kill names a process
// already reported. The first victim is a member of its own group, so the
// kernel names it a second time: under its pid, or, when its main thread
// has already exited, under the id of a thread that still holds its memory
// (find_lock_task_mm). That thread id is in no row of the task table, which
// lists every process of the cgroup; a real member is. So a pid missing
// from the table, with the victim's name and total-vm, is the victim again,
// as long as the victim has not come round under its own pid. Without a
// task table nothing can tell, and the line is reported as printed.
func (c *draft) repeatsVictim(k killLine) bool {
	v := c.victim
	if c.groupPIDs.has(k.pid) {
		c.victimAgain = c.victimAgain || (v != nil && k.pid == v.PID)
		return true
	}
	if v == nil || c.victimAgain || !c.hasTable() || k.comm != v.Comm {
		return false
	}
	if vm, ok := k.vals["total-vm"]; !ok || v.TotalVM == nil || vm != *v.TotalVM || c.table.listed(int64(k.pid)) {
		return false
	}
	c.victimAgain = true
	c.groupPIDs.add(k.pid)
	return true
}

// report builds the report of victim k from the context.
func (c *draft) report(k killLine) *Report {
	r := &Report{
		PID: k.pid, Comm: k.comm, Prefix: k.prefix,
		Constraint: c.constraint, Global: c.global,
		Memcg: c.memcg, TaskMemcg: c.taskMemcg,
		TriggerName: c.triggerName, TriggerPID: c.triggerPID,
		GFPMask: c.gfpMask, Order: c.order,
		MemcgUsage: c.usage, MemcgLimit: c.limit, MemcgFailcnt: c.failcnt,
		MemswUsage: c.memsw.usage, MemswLimit: c.memsw.limit,
		SwapUsage: c.swap.usage, SwapLimit: c.swap.limit,
		KmemUsage: c.kmem.usage, KmemLimit: c.kmem.limit,
		MemcgStat: maps.Clone(c.stat), RAM: c.ram,
	}
	if c.table != nil {
		// Shared by the reports of a group kill: linear in members.
		r.Tasks, r.TasksOmitted = c.table.finish()
		r.table = c.table
	}
	if r.Prefix == "" && c.oldVictim != nil {
		r.Prefix = c.oldVictim.prefix
	}
	if r.Comm == "" && c.oldVictim != nil && c.oldVictim.pid == k.pid {
		r.Comm = c.oldVictim.comm
	}
	if !c.hasSummary {
		switch {
		case r.Prefix == prefixMemcg || c.taskIn:
			r.Constraint = "CONSTRAINT_MEMCG"
		case strings.HasPrefix(r.Prefix, prefixGlobal):
			r.Global = true
		}
	}
	if c.group != "" && k.pid != c.sumPID {
		r.TaskMemcg = c.group // a member: in the group cgroup or below it
		r.TasksElsewhere = true
	}
	if r.Memcg == "" && !r.Global && r.Constraint == "CONSTRAINT_MEMCG" {
		r.Memcg, r.MemcgInferred = c.statPath, c.statInferred && c.statPath != ""
	}
	if c.sumUID != nil && k.pid == c.sumPID {
		r.UID = c.sumUID
	}
	set := func(key string, dst **int64) {
		if v, ok := k.vals[key]; ok {
			*dst = new(v)
		}
	}
	set("total-vm", &r.TotalVM)
	set("anon-rss", &r.AnonRSS)
	set("file-rss", &r.FileRSS)
	set("shmem-rss", &r.ShmemRSS)
	set("pgtables", &r.PgTables)
	set("oom_score_adj", &r.OOMScoreAdj)
	set("UID", &r.UID)
	if r.OOMScoreAdj == nil && c.table != nil {
		if adj, ok := c.table.scoreAdj(int64(k.pid)); ok {
			r.OOMScoreAdj = new(adj)
		}
	}
	r.Cause, r.CauseBytes, r.causeFromVictim = cause(r)
	return r
}

// trigger notes the allocating task from a stack dump's header line. Only
// the first stack dump of a report is the trigger's; other warnings print
// such lines too.
func (a *Assembler) trigger(line, pid, comm string, out []*Report) []*Report {
	if a.ctx != nil && !a.ctx.killed && a.ctx.triggerPID != nil {
		return out
	}
	var c *draft
	out, c = a.fresh(out)
	if c.triggerPID == nil {
		p, ok := a.pid(line, "trigger pid", pid)
		if !ok {
			return out
		}
		c.triggerPID = new(int64(p))
		if c.triggerName == "" || c.triggerGuessed {
			// The stack dump's header names the task after fixed words,
			// where no log prefix can be glued to it.
			c.triggerName, c.triggerGuessed = comm, false
		}
	}
	return out
}

// shared reports a process the kernel killed because it shared the
// victim's memory ("Kill process P (comm) sharing same memory", printed
// after the victim's kill line up to 4.x): a kill of its own, with the
// victim's report as its context.
func (a *Assembler) shared(r kmsg.Record, line, pidText, comm string, out []*Report) []*Report {
	c := a.ctx
	if c == nil || !c.killed || c.victim == nil {
		return out
	}
	pid, ok := a.pid(line, "shared kill pid", pidText)
	if !ok {
		return out
	}
	rep := c.report(killLine{pid: pid, comm: comm, prefix: c.victim.Prefix})
	rep.SharedWith = new(int64(c.victim.PID))
	rep.TasksElsewhere = true
	if r.HasSeq {
		rep.Seq = new(r.Seq)
	}
	if r.HasMonotonic {
		rep.Monotonic = new(r.Monotonic)
	}
	rep.Time, rep.TimeZoneUnknown = r.Time, r.TimeZoneUnknown
	out = a.release(out)
	return append(out, rep)
}

// Arch returns the architecture the log has shown so far ("x86" when a
// stack dump, kernel release or register line names it), or "".
func (a *Assembler) Arch() string { return a.arch }

// PageSizeKnown tells whether the task table's unit is settled: given with
// WithPageSize, or implied by the log's architecture (x86 has 4 KiB pages
// only; arm64 and ppc64 kernels are built with 4, 16 or 64 KiB).
func (a *Assembler) PageSizeKnown() bool {
	return a.pageSet || a.arch == "x86"
}

// archOf names the architecture a log line shows, or "". It runs on every
// line until one tells, so the regexps run only on lines holding text they
// need (a log of kill lines alone would spend most of its time here).
func archOf(line string) string {
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(line, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("86", "amd64", "IP: ", "_64", "asm_exc") && reX86.MatchString(line):
		return "x86"
	case has("arch64", "arm64", "el0", "pc : ") && reArm64.MatchString(line):
		return "arm64"
	case has("ppc64", "NIP: ") && rePPC.MatchString(line):
		return "ppc64"
	}
	return ""
}

// commOf returns the task name of an "invoked oom-killer" line: what
// follows a log prefix the line adapter could not take off (after the last
// "] " or ": "), and nothing when it cannot be a task name.
func commOf(s string) string {
	if i := max(strings.LastIndex(s, "] "), strings.LastIndex(s, ": ")); i >= 0 {
		s = s[i+2:]
	}
	if !plausibleComm(s) {
		return ""
	}
	return s
}

// unlimitedKB is where a usage line's limit means "no limit": the kernel
// prints its counter maximum (LLONG_MAX or PAGE_COUNTER_MAX pages, in kB:
// about 2^53), far above any memory.
const unlimitedKB = 1 << 52

// limitOf converts a usage line's limit in kB to bytes; nil when unlimited
// or out of range (rejected).
func (a *Assembler) limitOf(line, field, kb string) *int64 {
	v, ok := a.number(line, field, kb)
	if !ok || v >= unlimitedKB {
		return nil
	}
	return new(v * 1024)
}
