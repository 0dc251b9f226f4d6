// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap // import "github.com/oomsight/oomsight/internal/procsnap"

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

const (
	// MaxTop is how many processes a snapshot keeps: the largest by RSS.
	MaxTop = 10
	// MaxProcs bounds the processes whose status one snapshot reads
	// (the cost of a snapshot: one small read of /proc/<pid>/status each,
	// plus one cmdline read for each of the MaxTop kept); the rest are
	// counted in Snapshot.Unread.
	MaxProcs = 512
	// MaxCgroups bounds the cgroups of a subtree whose cgroup.procs one
	// snapshot reads (a pod's limit covers its containers' cgroups).
	MaxCgroups = 64
)

// Process is one process of a snapshot.
type Process struct {
	PID int64
	// Name is the comm ("" when the capture is off); Cmdline the command
	// line as the capture keeps it (see Render).
	Name, Cmdline              string
	RSSAnon, RSSFile, RSSShmem int64
}

// RSS is the process's total resident memory.
func (p Process) RSS() int64 { return p.RSSAnon + p.RSSFile + p.RSSShmem }

// Snapshot is the processes of a cgroup (and its descendants) at one time.
type Snapshot struct {
	// Path is the cgroup (relative to the hierarchy root); Time when it
	// was taken; Usage and Limit the cgroup's usage and limit that made it
	// (0: unknown).
	Path         string
	Time         time.Time
	Usage, Limit uint64
	// Processes are the MaxTop largest by RSS, largest first.
	Processes []Process
	// Seen is how many processes the cgroup's subtree listed; Omitted how
	// many of those read are not in Processes; Hidden how many were not
	// visible (listed as pid 0: they live in another pid namespace, the
	// collector lacks the host's, hostPID); Gone how many exited (or were
	// zombies) before they were read; Unread how many were not read past
	// MaxProcs; CgroupsUnread how many descendant cgroups were not listed
	// past MaxCgroups.
	Seen, Omitted, Hidden, Gone, Unread, CgroupsUnread int
}

// Reader takes snapshots. It is not safe for concurrent use (its buffers
// are reused).
type Reader struct {
	// Proc is the procfs mount of the pid namespace the pids are read in
	// ("/proc").
	Proc    string
	Capture Capture
	// All keeps every process read (up to MaxProcs) instead of the MaxTop
	// largest: `oomsight snapshot` lists the whole cgroup.
	All   bool
	buf   []byte
	pids  []int
	procs []Process
}

// NewReader returns a Reader of the procfs at proc.
func NewReader(proc string, c Capture) *Reader {
	return &Reader{Proc: proc, Capture: c, buf: make([]byte, ReadCmdline)}
}

// Take snapshots the processes of the cgroup directory dir and its
// descendants. Processes that exit meanwhile are counted in Hidden; an
// error means the cgroup itself could not be read.
func (r *Reader) Take(dir string) (Snapshot, error) {
	var s Snapshot
	pids, hidden, unreadCgroups, err := r.listPIDs(dir)
	if err != nil {
		return s, err
	}
	s.Seen, s.Hidden, s.CgroupsUnread = len(pids)+hidden, hidden, unreadCgroups
	if len(pids) > MaxProcs {
		s.Unread += len(pids) - MaxProcs
		pids = pids[:MaxProcs]
	}
	r.procs = r.procs[:0]
	for _, pid := range pids {
		st, err := r.status(pid)
		if err != nil || !st.HasRSS {
			s.Gone++ // exited meanwhile, or a zombie
			continue
		}
		r.procs = append(r.procs, Process{PID: int64(pid), Name: st.Name, RSSAnon: st.RSSAnon, RSSFile: st.RSSFile, RSSShmem: st.RSSShmem})
	}
	slices.SortStableFunc(r.procs, func(a, b Process) int {
		switch {
		case a.RSS() > b.RSS():
			return -1
		case a.RSS() < b.RSS():
			return 1
		}
		return 0
	})
	n := len(r.procs)
	if !r.All {
		n = min(n, MaxTop)
	}
	s.Omitted = len(r.procs) - n
	s.Processes = make([]Process, n)
	copy(s.Processes, r.procs[:n])
	for i := range s.Processes {
		p := &s.Processes[i]
		if r.Capture != CaptureOff {
			raw, truncated, _ := r.cmdline(p.PID) // exited meanwhile: [name]
			p.Cmdline = Render(r.Capture, p.Name, raw, truncated)
		} else {
			p.Name = ""
		}
	}
	clear(r.procs)
	return s, nil
}

// listPIDs reads cgroup.procs of dir and of its descendants (breadth
// first, at most MaxCgroups cgroups); it returns the visible pids, the
// count of invisible ones and of descendant cgroups left unread.
func (r *Reader) listPIDs(dir string) (pids []int, hidden, unread int, err error) {
	pids = r.pids[:0]
	queue := []string{dir}
	for read := 0; len(queue) > 0; read++ {
		d := queue[0]
		queue = queue[1:]
		if read == MaxCgroups {
			unread += len(queue) + 1
			break
		}
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if d == dir {
				return nil, 0, 0, fmt.Errorf("procsnap: %w", err)
			}
			continue // a descendant removed meanwhile
		}
		var h int
		pids, h, err = ParsePIDs(b, pids)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("procsnap: %s: %w", d, err)
		}
		hidden += h
		ents, err := os.ReadDir(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		for _, e := range ents {
			if e.IsDir() {
				queue = append(queue, filepath.Join(d, e.Name()))
			}
		}
	}
	r.pids = pids
	return pids, hidden, unread, nil
}

// status reads and parses /proc/<pid>/status.
func (r *Reader) status(pid int) (Status, error) {
	b, _, err := r.read(pid, "status", 0)
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(b)
}

// cmdline reads the first ReadCmdline bytes of /proc/<pid>/cmdline.
func (r *Reader) cmdline(pid int64) ([]byte, bool, error) {
	return r.read(int(pid), "cmdline", ReadCmdline)
}

// read reads /proc/<pid>/<file> into the reader's buffer: up to limit bytes
// (0: all of it), and whether more followed.
func (r *Reader) read(pid int, file string, limit int) ([]byte, bool, error) {
	f, err := os.Open(filepath.Join(r.Proc, strconv.Itoa(pid), file))
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	b := r.buf[:0]
	if limit > 0 && cap(b) > limit {
		b = b[:0:limit]
	}
	for {
		if len(b) == cap(b) {
			if limit > 0 {
				// One byte more tells whether the file goes on.
				var one [1]byte
				n, _ := f.Read(one[:])
				return b, n > 0, nil
			}
			b = slices.Grow(b, len(b))
			r.buf = b[:0]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			r.buf = b[:0]
			return b, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

// initPIDNamespace is /proc/<pid>/ns/pid of a process in the initial (the
// host's) pid namespace: the kernel gives that namespace a fixed inode,
// PROC_PID_INIT_INO (0xEFFFFFFC), since 3.8.
const initPIDNamespace = "pid:[4026531836]"

// HostPIDNamespace tells whether this process shares the host's pid
// namespace, where cgroup.procs and the procfs at proc show every
// process. Outside it, cgroup v1 leaves the processes of other
// namespaces out of cgroup.procs altogether (v2 lists them as 0), so a
// snapshot would be silently partial.
func HostPIDNamespace(proc string) (bool, error) {
	link, err := os.Readlink(filepath.Join(proc, "self", "ns", "pid"))
	if err != nil {
		return false, fmt.Errorf("procsnap: %w", err)
	}
	return link == initPIDNamespace, nil
}
