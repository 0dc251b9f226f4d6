// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/oomsight/oomsight/internal/kmsg/text"
	"github.com/oomsight/oomsight/internal/oomrecord"
	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/printable"
)

// explain implements `oomsight explain [--format text|json] [FILE|-]`.
func explain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	pageSize := fs.Int64("page-size", oomreport.DefaultPageSize, "the logging kernel's page size in `bytes`, the unit of the task table (65536 for 64K-page arm64/ppc64le kernels)")
	maxTasks := fs.Int("max-tasks", oomrecord.DefaultMaxTasks, "task table rows kept per report, largest rss first (the rest are counted); -1 keeps all")
	utcOffset := fs.String("utc-offset", "", "the logging machine's UTC `offset` (+02:00, -0700, 0): dmesg -T and syslog stamps carry no zone")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: oomsight explain [--format text|json] [--max-tasks N] [--page-size BYTES] [--utc-offset ±HH:MM] [FILE|-]")
		fs.PrintDefaults()
	}
	files, code, ok := parseInterleaved(fs, args)
	if !ok {
		return code
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "oomsight explain: unknown format %q (want text or json)\n", *format)
		return 2
	}
	if *maxTasks == 0 || *maxTasks < -1 {
		fmt.Fprintf(stderr, "oomsight explain: --max-tasks %d: want a positive number, or -1 for all rows\n", *maxTasks)
		return 2
	}
	if *pageSize < 4096 || *pageSize&(*pageSize-1) != 0 {
		fmt.Fprintf(stderr, "oomsight explain: --page-size %d: want a power of two of at least 4096 (4096, 16384, 65536)\n", *pageSize)
		return 2
	}
	var textOpts []text.Option
	if *utcOffset != "" {
		d, err := parseOffset(*utcOffset)
		if err != nil {
			fmt.Fprintf(stderr, "oomsight explain: --utc-offset %s: %v\n", *utcOffset, err)
			return 2
		}
		textOpts = append(textOpts, text.WithUTCOffset(d))
	}
	if len(files) > 1 {
		fmt.Fprintf(stderr, "oomsight explain: one input at most, got %d: %s\n", len(files), strings.Join(files, " "))
		return 2
	}
	in, name := stdin, "standard input"
	if len(files) == 1 && files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			fmt.Fprintf(stderr, "oomsight explain: %v\n", err)
			return 2
		}
		defer f.Close()
		in, name = f, files[0]
	}
	if isTerminal(in) {
		// Someone typed `oomsight explain` alone: say what it waits for.
		fmt.Fprintln(stderr, "oomsight explain: reading a kernel log from the terminal; paste it and end with Ctrl-D (or pipe dmesg/journalctl -k into it, or name a file)")
	}
	var opts []oomreport.Option
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "page-size" {
			opts = append(opts, oomreport.WithPageSize(*pageSize))
		}
	})
	// The assembler keeps no more rows than are printed, so that a report's
	// memory is bounded too (-1: all, as asked). Values out of range and
	// malformed kmsg records are said on stderr (the first few) and counted.
	rejected, malformed := 0, 0
	opts = append(opts, oomreport.WithMaxTasks(*maxTasks), oomreport.WithParseErrors(func(e *oomreport.ParseError) {
		rejected++
		if rejected+malformed <= maxRejectedShown {
			fmt.Fprintf(stderr, "oomsight explain: %s: %v\n", name, e)
		}
	}))
	textOpts = append(textOpts, text.WithMalformed(func(err error) {
		malformed++
		if rejected+malformed <= maxRejectedShown {
			fmt.Fprintf(stderr, "oomsight explain: %s: skipped: %v\n", name, err)
		}
	}))
	asm := oomreport.NewAssembler(opts...)
	// Streamed: each report is printed as soon as it is complete and then
	// dropped, so memory is bounded by the largest report, not the log.
	out := bufio.NewWriterSize(stdout, 64<<10)
	render := oomrecord.Options{MaxTasks: *maxTasks}
	n, pages, local := 0, false, false
	for r, err := range asm.Stream(text.Records(in, oomreport.Lines, textOpts...)) {
		if err != nil {
			_ = out.Flush()
			fmt.Fprintf(stderr, "oomsight explain: %s: %v\n", name, err)
			return 2
		}
		pages = pages || (len(r.Tasks) > 0 && !r.TasksElsewhere) || (r.RAM != nil && r.Global)
		local = local || r.TimeZoneUnknown
		if *format == "json" {
			err = writeJSON(out, r, render)
		} else {
			err = writeText(out, r, n > 0, render)
		}
		if err != nil {
			fmt.Fprintf(stderr, "oomsight explain: %v\n", err)
			return 2
		}
		n++
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "oomsight explain: writing reports: %v\n", err)
		return 2
	}
	if rejected+malformed > 0 {
		fmt.Fprintln(stderr, summary(n, rejected, malformed))
	}
	if n == 0 {
		fmt.Fprintln(stderr, "no OOM kill found in input")
		return 1
	}
	if pages && !asm.PageSizeKnown() {
		// Only the task table's rss and the RAM line count pages (the
		// victim's own sizes come in kB); x86 has 4 KiB pages only, arm64
		// and ppc64 kernels may have 16 or 64 KiB.
		fmt.Fprintln(stderr, "oomsight explain: the log does not show its architecture, so the task table's rss (and the RAM size) assume 4 KiB pages; use --page-size 65536 for a 64K-page kernel's log")
	}
	if local {
		fmt.Fprintln(stderr, "oomsight explain: the log's times carry no zone: they are the logging machine's local time, UTC offset unknown; pass --utc-offset to place them")
	}
	return 0
}

// maxRejectedShown bounds the rejected values and records explain
// describes on stderr; the summary counts them all.
const maxRejectedShown = 20

// summary is the last line on stderr when the input had values or records
// explain could not take.
func summary(kills, rejected, malformed int) string {
	s := fmt.Sprintf("oomsight explain: %d kill(s) explained", kills)
	if rejected > 0 {
		s += fmt.Sprintf("; %d value(s) rejected as out of range: they are missing from the output, never wrapped", rejected)
	}
	if malformed > 0 {
		s += fmt.Sprintf("; %d malformed kmsg record(s) skipped", malformed)
	}
	if rejected+malformed > maxRejectedShown {
		s += fmt.Sprintf(" (the first %d shown above)", maxRejectedShown)
	}
	return s
}

// isTerminal tells whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writeJSON prints one flat object per line (JSON Lines), so that jq and
// log shippers can take the output as it is.
func writeJSON(w io.Writer, r *oomreport.Report, o oomrecord.Options) error {
	b, err := oomrecord.JSON(r, o)
	if err == nil {
		_, err = w.Write(append(b, '\n'))
	}
	if err != nil {
		return fmt.Errorf("writing report of pid %d: %w", r.PID, err)
	}
	return nil
}

// writeText prints a block per kill (after a blank line when not the
// first): the sentence, the attributes aligned, the non-zero stat counters
// and the task table. Text from the log (names, paths) is shown through
// printable.Escape: a terminal must not act on a name's escape sequences;
// --format json keeps the exact values.
func writeText(w io.Writer, r *oomreport.Report, blank bool, o oomrecord.Options) error {
	var b strings.Builder
	if blank {
		b.WriteString("\n")
	}
	b.WriteString(r.Body())
	b.WriteString("\n")
	switch {
	case r.Time.IsZero():
	case r.TimeZoneUnknown:
		fmt.Fprintf(&b, "  %-32s %s (local time, UTC offset unknown)\n", "time:", r.Time.Format("2006-01-02 15:04:05.000000"))
	default:
		fmt.Fprintf(&b, "  %-32s %s\n", "time:", r.Time.Format("2006-01-02 15:04:05.000000 -0700"))
	}
	for _, f := range append(oomrecord.Record(r, o), oomrecord.Resource(r)...) {
		switch v := f.Value.(type) {
		case map[string]int64:
			writeStat(&b, f.Key, v)
		case []map[string]any:
			writeTasks(&b, f.Key, v)
		case int64:
			if oomrecord.IsBytes(f.Key) {
				fmt.Fprintf(&b, "  %-32s %d (%s)\n", f.Key+":", v, oomreport.Bytes(v))
				continue
			}
			fmt.Fprintf(&b, "  %-32s %d\n", f.Key+":", v)
		case string:
			fmt.Fprintf(&b, "  %-32s %s\n", f.Key+":", printable.Escape(v))
		default:
			fmt.Fprintf(&b, "  %-32s %v\n", f.Key+":", v)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing report of pid %d: %w", r.PID, err)
	}
	return nil
}

func writeStat(b *strings.Builder, key string, st map[string]int64) {
	keys := make([]string, 0, len(st))
	for k, v := range st {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	fmt.Fprintf(b, "  %-32s %d counters, %d non-zero:\n", key+":", len(st), len(keys))
	for _, k := range keys {
		fmt.Fprintf(b, "    %-30s %d\n", k, st[k])
	}
}

func writeTasks(b *strings.Builder, key string, tasks []map[string]any) {
	fmt.Fprintf(b, "  %s:\n", key)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "    pid\trss\toom_score_adj\t name\t")
	for _, t := range tasks {
		rss, _ := t["rss"].(int64)
		name, _ := t["name"].(string)
		fmt.Fprintf(tw, "    %d\t%s\t%d\t %s\t\n", t["pid"], oomreport.Bytes(rss), t["oom_score_adj"], printable.Escape(name))
	}
	_ = tw.Flush() // a failed write to w surfaces on the caller's next write
}

// parseOffset reads a UTC offset: "+02:00", "-0700", "+2", "0", "Z", "UTC".
func parseOffset(s string) (time.Duration, error) {
	if s == "Z" || s == "UTC" || s == "0" {
		return 0, nil
	}
	sign := time.Duration(1)
	switch s[0] {
	case '+':
	case '-':
		sign = -1
	default:
		return 0, errors.New("want a signed offset such as +02:00, -0700 or +2 (or 0)")
	}
	digits := strings.ReplaceAll(s[1:], ":", "")
	var h, m int
	var err error
	switch len(digits) {
	case 1, 2:
		h, err = strconv.Atoi(digits)
	case 4:
		h, err = strconv.Atoi(digits[:2])
		if err == nil {
			m, err = strconv.Atoi(digits[2:])
		}
	default:
		err = errors.New("bad length")
	}
	if err != nil || h > 14 || m > 59 {
		return 0, errors.New("want a signed offset such as +02:00, -0700 or +2 (or 0), at most 14 hours")
	}
	return sign * (time.Duration(h)*time.Hour + time.Duration(m)*time.Minute), nil
}
