// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oomreport // import "github.com/oomsight/oomsight/internal/oomreport"

import (
	"fmt"
	"math"
	"strconv"
)

// ParseError is a value of a report line that the assembler rejected
// instead of wrapping or saturating it: a number past int64 (or past the
// kernel's own range, as a pid above PID_MAX_LIMIT), an amount whose
// conversion to bytes overflows, or a part of a report past a bound. The
// rest of the line still counts; the field is left out of the report (a
// kill line whose pid is rejected is no kill).
type ParseError struct {
	Field  string // what the value is: "anon-rss", "kill line pid", "task table rss", …
	Value  string // the value as printed, at most maxErrValue bytes
	Reason string
	Line   string // the line, at most maxErrLine bytes
}

const (
	maxErrValue = 40
	maxErrLine  = 200
)

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s %q rejected: %s, in %q", e.Field, e.Value, e.Reason, e.Line)
}

// WithParseErrors has fn called for each value the assembler rejects; a
// caller counts and logs them (the receiver's
// otelcol_cgroupmemory_oom_parse_errors, explain's summary on stderr).
func WithParseErrors(fn func(*ParseError)) Option {
	return func(a *Assembler) { a.onError = fn }
}

// reject reports a rejected value.
func (a *Assembler) reject(line, field, value, reason string) {
	if a.onError == nil {
		return
	}
	a.onError(newParseError(line, field, value, reason))
}

func newParseError(line, field, value, reason string) *ParseError {
	return &ParseError{Field: field, Value: cut(value, maxErrValue), Reason: reason, Line: cut(line, maxErrLine)}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Reasons.
const (
	reasonRange    = "out of int64 range"
	reasonBytes    = "too large to convert to bytes (overflows int64)"
	reasonSum      = "the sum overflows int64"
	reasonPID      = "not a pid (out of range, or above the kernel's PID_MAX_LIMIT, 4194304)"
	reasonScoreAdj = "outside the kernel's oom_score_adj range (-1000…1000)"
)

// number parses a decimal int64; a value out of range is rejected.
func (a *Assembler) number(line, field, s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		a.reject(line, field, s, reasonRange)
		return 0, false
	}
	return v, true
}

// scaled parses a decimal count of units (kB, pages) into bytes; a value
// whose bytes do not fit int64 is rejected.
func (a *Assembler) scaled(line, field, s string, unit int64) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		a.reject(line, field, s, reasonRange)
		return 0, false
	}
	b, ok := mulBytes(v, unit)
	if !ok {
		a.reject(line, field, s, reasonBytes)
	}
	return b, ok
}

// pid parses a pid: at most pidLimit.
func (a *Assembler) pid(line, field, s string) (int, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > pidLimit {
		a.reject(line, field, s, reasonPID)
		return 0, false
	}
	return int(v), true
}

// mulBytes returns v × unit (unit > 0) and whether it fits int64.
func mulBytes(v, unit int64) (int64, bool) {
	if v > math.MaxInt64/unit || v < math.MinInt64/unit {
		return 0, false
	}
	return v * unit, true
}

// addBytes returns a + b and whether it fits int64.
func addBytes(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
