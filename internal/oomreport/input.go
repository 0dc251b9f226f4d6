package oomreport

import (
	"io"
	"strings"

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

// ReadAll reads a whole kernel log (any form text.Records reads) and
// returns one report per killed process; zone-less times stay local (see
// text.WithUTCOffset). On a read error it returns the reports assembled so
// far with the error.
func ReadAll(rd io.Reader, opts ...Option) ([]*Report, error) {
	a := NewAssembler(opts...)
	var out []*Report
	for r, err := range text.Records(rd, Lines) {
		if err != nil {
			return append(out, a.Flush()...), err
		}
		out = append(out, a.Add(r)...)
	}
	return append(out, a.Flush()...), nil
}
