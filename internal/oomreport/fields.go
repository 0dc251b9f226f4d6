package oomreport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/oomsight/oomsight/internal/identity"
)

// Fields returns the report's attributes under the keys of metadata.yaml's
// linux.oom_kill event, only those
// the report tells, in this fixed order: process.pid,
// process.executable.name, process.user.id, linux.oom.constraint,
// linux.oom.global, linux.oom.memcg, linux.oom.task_memcg,
// linux.oom.trigger.name, linux.oom.trigger.pid, linux.oom.gfp_mask,
// linux.oom.order, linux.oom.victim.{total_vm, anon_rss, file_rss,
// shmem_rss, pgtables, oom_score_adj}, linux.oom.memcg.{usage, limit,
// failcnt, stat}, linux.oom.tasks, linux.oom.group_kill, linux.oom.cause,
// linux.kmsg.seq, cgroup.path, k8s.pod.uid, k8s.pod.qos_class,
// container.id, container.runtime.name.
//
// Values are int64, string, bool, map[string]int64 (the stat dump) or
// []map[string]any (the tasks, keys pid, name, rss, oom_score_adj). The
// identity attributes are derived from the victim's cgroup (TaskMemcg).
// linux.oom.global is present when the report tells the kind of OOM;
// linux.oom.group_kill and linux.oom.cause are always present.
func (r *Report) Fields() []Field {
	var fs []Field
	str := func(k, v string) {
		if v != "" {
			fs = append(fs, Field{k, v})
		}
	}
	num := func(k string, v *int64) {
		if v != nil {
			fs = append(fs, Field{k, *v})
		}
	}
	fs = append(fs, Field{"process.pid", int64(r.PID)})
	str("process.executable.name", r.Comm)
	num("process.user.id", r.UID)
	str("linux.oom.constraint", r.Constraint)
	if r.Constraint != "" || r.Prefix != "" || r.Global {
		fs = append(fs, Field{"linux.oom.global", r.Global})
	}
	str("linux.oom.memcg", r.Memcg)
	if r.MemcgInferred {
		fs = append(fs, Field{"linux.oom.memcg.inferred", true})
	}
	str("linux.oom.task_memcg", r.TaskMemcg)
	str("linux.oom.trigger.name", r.TriggerName)
	num("linux.oom.trigger.pid", r.TriggerPID)
	str("linux.oom.gfp_mask", r.GFPMask)
	num("linux.oom.order", r.Order)
	num("linux.oom.victim.total_vm", r.TotalVM)
	num("linux.oom.victim.anon_rss", r.AnonRSS)
	num("linux.oom.victim.file_rss", r.FileRSS)
	num("linux.oom.victim.shmem_rss", r.ShmemRSS)
	num("linux.oom.victim.pgtables", r.PgTables)
	num("linux.oom.victim.oom_score_adj", r.OOMScoreAdj)
	num("linux.oom.memcg.usage", r.MemcgUsage)
	num("linux.oom.memcg.limit", r.MemcgLimit)
	num("linux.oom.memcg.failcnt", r.MemcgFailcnt)
	num("linux.oom.memcg.memsw.usage", r.MemswUsage)
	num("linux.oom.memcg.memsw.limit", r.MemswLimit)
	num("linux.oom.memcg.swap.usage", r.SwapUsage)
	num("linux.oom.memcg.swap.limit", r.SwapLimit)
	num("linux.oom.memcg.kmem.usage", r.KmemUsage)
	num("linux.oom.memcg.kmem.limit", r.KmemLimit)
	if len(r.MemcgStat) > 0 {
		fs = append(fs, Field{"linux.oom.memcg.stat", r.MemcgStat})
	}
	if len(r.Tasks) > 0 && !r.TasksElsewhere {
		rows, omitted := r.topTasks()
		tasks := make([]map[string]any, len(rows))
		for i, t := range rows {
			tasks[i] = map[string]any{"pid": t.PID, "name": t.Name, "rss": t.RSS, "oom_score_adj": t.OOMScoreAdj}
		}
		fs = append(fs, Field{"linux.oom.tasks", tasks})
		if omitted > 0 {
			fs = append(fs, Field{"linux.oom.tasks.omitted", omitted})
		}
	}
	fs = append(fs, Field{"linux.oom.group_kill", r.GroupKill})
	num("linux.oom.shared_with.pid", r.SharedWith)
	cause := r.Cause
	if cause == "" {
		cause = CauseUnknown
	}
	fs = append(fs, Field{"linux.oom.cause", cause})
	if r.Seq != nil {
		fs = append(fs, Field{"linux.kmsg.seq", int64(*r.Seq & (1<<63 - 1))}) // kmsg sequence numbers are far below 2^63
	}
	str("cgroup.path", r.TaskMemcg)
	id := identity.FromPath(r.TaskMemcg)
	str("k8s.pod.uid", id.PodUID)
	str("k8s.pod.qos_class", id.QOSClass)
	str("container.id", id.ContainerID)
	str("container.runtime.name", id.Runtime)
	return fs
}

// MarshalJSON writes one flat object: the Fields keys in their order, then
// "body" and, when known, "time" (RFC 3339 with nanoseconds). The order is
// kept (rather than a map's sorted keys) so that a line reads like the
// report: who, where, how much, why.
func (r *Report) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(k string, v any) error {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("oomreport: encoding %s: %w", k, err)
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
		return nil
	}
	for _, f := range r.Fields() {
		if err := write(f.Key, f.Value); err != nil {
			return nil, err
		}
	}
	if err := write("body", r.Body()); err != nil {
		return nil, err
	}
	switch {
	case r.Time.IsZero():
	case r.TimeZoneUnknown:
		// ISO 8601 local time: no offset, because the log gave none.
		if err := write("time", r.Time.Format("2006-01-02T15:04:05.999999999")); err != nil {
			return nil, err
		}
		if err := write("time.utc_offset", "unknown"); err != nil {
			return nil, err
		}
	default:
		if err := write("time", r.Time.Format(time.RFC3339Nano)); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// topTasks returns the task table rows Fields keeps — the MaxTasks largest
// by rss, in the kernel's order — and how many were left out.
func (r *Report) topTasks() ([]Task, int) {
	limit := r.MaxTasks
	if limit == 0 {
		limit = DefaultMaxTasks
	}
	if limit < 0 || len(r.Tasks) <= limit {
		return r.Tasks, 0
	}
	idx := make([]int, len(r.Tasks))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return r.Tasks[idx[a]].RSS > r.Tasks[idx[b]].RSS })
	keep := idx[:limit]
	sort.Ints(keep)
	rows := make([]Task, limit)
	for i, j := range keep {
		rows[i] = r.Tasks[j]
	}
	return rows, len(r.Tasks) - limit
}
