// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oomsight/oomsight/internal/cgroupfs"
	"github.com/oomsight/oomsight/internal/procsnap"
)

// snapshotUsage is the snapshot command's synopsis.
const snapshotUsage = "usage: oomsight snapshot [--command-line redacted|name|off] [--root DIR] [--proc DIR] [--format text|json] CGROUP"

// snapshot implements `oomsight snapshot CGROUP`: the process snapshot of
// a cgroup as the agent would put it on a record (procsnap's Reader.Take,
// the same reads, capture and redaction), every process listed. It is how
// to audit what the redaction leaves of a workload's command lines before
// the records leave the node.
func snapshot(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	flags.SetOutput(stderr)
	capture := flags.String("command-line", procsnap.SettingRedacted, "how much of each command line to keep, as the receiver's processes.command_line: redacted, name or off")
	root := flags.String("root", "/sys/fs/cgroup", "where the cgroup filesystem is mounted, as the receiver's root_path (v2, v1 and hybrid are detected below it)")
	proc := flags.String("proc", "/proc", "the procfs mount of the pid namespace the cgroup's pids are read in")
	format := flags.String("format", "text", "output `format`: text or json")
	flags.Usage = func() {
		fmt.Fprintln(stderr, snapshotUsage)
		fmt.Fprintln(stderr, "CGROUP is the cgroup.path as records carry it (/kubepods/burstable/pod…/…), relative to the memory hierarchy's root.")
		flags.PrintDefaults()
	}
	cgroups, code, ok := parseInterleaved(flags, args)
	if !ok {
		return code
	}
	c, err := procsnap.ParseCapture(*capture)
	if err != nil {
		fmt.Fprintf(stderr, "oomsight snapshot: --command-line: %v\n", err)
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "oomsight snapshot: unknown format %q (want text or json)\n", *format)
		return 2
	}
	if len(cgroups) != 1 {
		fmt.Fprintf(stderr, "oomsight snapshot: want one CGROUP, got %d\n%s\n", len(cgroups), snapshotUsage)
		return 2
	}
	h, err := cgroupfs.Detect(*root)
	if err != nil {
		fmt.Fprintf(stderr, "oomsight snapshot: --root %s: %v; pass --root where the host's cgroup filesystem is mounted (/sys/fs/cgroup, or /host/sys/fs/cgroup in a container)\n", *root, err)
		return 1
	}
	// The path as records carry it, cleaned so that it stays below the
	// hierarchy's root whatever it says (../../etc).
	cg := path.Clean("/" + cgroups[0])
	dir := h.Abs(cg)
	if fi, statErr := os.Stat(dir); statErr != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "oomsight snapshot: cgroup %s not found in the %s memory hierarchy at %s (no directory %s); give the cgroup.path of a record or of a metric\n", cg, h.Version, h.Dir, dir)
		return 1
	}
	if host, hostPIDNamespaceErr := procsnap.HostPIDNamespace(*proc); hostPIDNamespaceErr == nil && !host {
		fmt.Fprintf(stderr, "oomsight snapshot: not in the host's pid namespace: processes of other namespaces are left out (the agent takes no snapshot at all there)\n")
	}
	r := procsnap.NewReader(*proc, c)
	r.All = true
	at := time.Now()
	sn, err := r.Take(dir)
	if errors.Is(err, fs.ErrPermission) {
		fmt.Fprintf(stderr, "oomsight snapshot: %v; run as root (the agent does)\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "oomsight snapshot: cgroup %s: %v\n", cg, err)
		return 1
	}
	sn.Path, sn.Time = cg, at
	out := snapshotOut{Cgroup: cg, Dir: dir, Version: h.Version.String(), CommandLine: c.String(), Snapshot: sn}
	if *format == "json" {
		err = out.writeJSON(stdout)
	} else {
		err = out.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "oomsight snapshot: %v\n", err)
		return 1
	}
	return 0
}

// snapshotOut is a snapshot with where it was taken.
type snapshotOut struct {
	Cgroup, Dir, Version, CommandLine string
	Snapshot                          procsnap.Snapshot
}

// jsonProcess is one process as the record's linux.oom.processes
// carries it (the same keys).
type jsonProcess struct {
	PID      int64  `json:"pid"`
	Name     string `json:"name,omitempty"`
	Cmdline  string `json:"cmdline,omitempty"`
	RSSAnon  int64  `json:"rss_anon"`
	RSSFile  int64  `json:"rss_file"`
	RSSShmem int64  `json:"rss_shmem"`
}

func (o snapshotOut) writeJSON(w io.Writer) error {
	sn := o.Snapshot
	procs := make([]jsonProcess, len(sn.Processes))
	for i, p := range sn.Processes {
		procs[i] = jsonProcess{PID: p.PID, Name: p.Name, Cmdline: p.Cmdline, RSSAnon: p.RSSAnon, RSSFile: p.RSSFile, RSSShmem: p.RSSShmem}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{
		"cgroup.path":    o.Cgroup,
		"dir":            o.Dir,
		"cgroup.version": o.Version,
		"time":           sn.Time.UTC().Format(time.RFC3339Nano),
		"command_line":   o.CommandLine,
		"processes":      procs,
		"seen":           sn.Seen,
		"hidden":         sn.Hidden,
		"gone":           sn.Gone,
		"unread":         sn.Unread,
		"cgroups_unread": sn.CgroupsUnread,
	})
}

func (o snapshotOut) writeText(w io.Writer) error {
	sn := o.Snapshot
	fmt.Fprintf(w, "cgroup %s (%s, %s) at %s, command lines: %s\n", o.Cgroup, o.Version, o.Dir, sn.Time.UTC().Format(time.RFC3339), o.CommandLine)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tRSS\tANON\tFILE\tSHMEM\tCOMMAND")
	for _, p := range sn.Processes {
		cmd := p.Cmdline
		if cmd == "" {
			cmd = p.Name // name: the name; off: neither
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", p.PID, mib(p.RSS()), mib(p.RSSAnon), mib(p.RSSFile), mib(p.RSSShmem), cmd)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	if sn.Hidden > 0 {
		notes = append(notes, fmt.Sprintf("%d in another pid namespace", sn.Hidden))
	}
	if sn.Gone > 0 {
		notes = append(notes, fmt.Sprintf("%d exited or zombies", sn.Gone))
	}
	if sn.Unread > 0 {
		notes = append(notes, fmt.Sprintf("%d not read past %d", sn.Unread, procsnap.MaxProcs))
	}
	if sn.CgroupsUnread > 0 {
		notes = append(notes, fmt.Sprintf("%d descendant cgroups not read past %d", sn.CgroupsUnread, procsnap.MaxCgroups))
	}
	line := fmt.Sprintf("%d processes listed of %d", len(sn.Processes), sn.Seen)
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, ", ") + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// mib prints bytes in MiB with one decimal.
func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
