// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import (
	"io"
	"iter"
	"strings"

	"github.com/oomsight/oomsight/internal/kmsg"
	"github.com/oomsight/oomsight/internal/kmsg/text"
)

// Lines tells the kernel log text reader (kmsg/text) what the lines of an
// OOM report look like, so that it finds them behind any log prefix.
var Lines text.Lines = reportLines{}

type reportLines struct{}

func (reportLines) Known(msg string) bool   { return isKernelLine(msg) }
func (reportLines) Context(msg string) bool { return isContextLine(strings.TrimLeft(msg, " \t")) }
func (reportLines) Start(msg string) int    { return kernelStart(msg) }

// AfterNumber: "12 Web Content invoked …" could be the task "12 Web
// Content", so only a task name without blanks leaves the number a line
// number; stat lines and task rows do.
func (reportLines) AfterNumber(rest string) bool {
	if m := reInvoked.FindStringSubmatch(rest); m != nil {
		return m[1] != "" && !strings.ContainsAny(m[1], " \t")
	}
	return isKernelLine(rest) || isContextLine(rest)
}

// Reports reads a kernel log (any form text.Records reads) and yields one
// report per killed process as soon as the kernel has said all it will
// about it; zone-less times stay local (see text.WithUTCOffset). Nothing is
// kept of a report once yielded, so memory is bounded by the report in
// progress (its task table capped by WithMaxTasks), not by the log. A read
// error is yielded last, after the reports assembled up to it.
func Reports(rd io.Reader, opts ...Option) iter.Seq2[*Report, error] {
	return NewAssembler(opts...).Stream(text.Records(rd, Lines))
}

// Stream assembles the records recs yields, in order, into reports, and
// yields each report once complete: what Reports does for kernel log
// text, for any source of records (a raw /dev/kmsg dump, a live reader
// wrapped in an iterator). At the end of recs, or at its first error, the
// reports still pending are flushed (see Flush) and yielded, then the
// error. The assembler is the caller's to ask afterwards (Arch,
// PageSizeKnown).
func (a *Assembler) Stream(recs iter.Seq2[kmsg.Record, error]) iter.Seq2[*Report, error] {
	return func(yield func(*Report, error) bool) {
		each := func(reps []*Report) bool {
			for _, r := range reps {
				if !yield(r, nil) {
					return false
				}
			}
			return true
		}
		for rec, err := range recs {
			if err != nil {
				if each(a.Flush()) {
					yield(nil, err)
				}
				return
			}
			if !each(a.Add(rec)) {
				return
			}
		}
		each(a.Flush())
	}
}

// ReadAll reads a whole kernel log and returns its reports (see Reports):
// for tests and small inputs; a caller that prints reports should range
// over Reports instead, whose memory does not grow with the log. On a
// read error it returns the reports assembled so far with the error.
func ReadAll(rd io.Reader, opts ...Option) ([]*Report, error) {
	var out []*Report
	for r, err := range Reports(rd, opts...) {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
