// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs // import "github.com/oomsight/oomsight/internal/cgroupfs"

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// v1Unlimited is the smallest memory.limit_in_bytes value that means "no
// limit": the kernel prints PAGE_COUNTER_MAX pages, which is just below 2^63
// for any page size. No real limit comes near 2^62 bytes.
const v1Unlimited = 1 << 62

var errEmpty = errors.New("empty file")

// ParseUint parses a file holding one decimal number and a newline.
func ParseUint(b []byte) (uint64, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, errEmpty
	}
	return parseDecimal(b)
}

// ParseLimit parses a limit file: v2 memory.max ("max" or a number) or v1
// memory.limit_in_bytes (a huge number when unlimited). limited is false when
// there is no limit.
func ParseLimit(b []byte) (v uint64, limited bool, err error) {
	b = bytes.TrimSpace(b)
	if string(b) == "max" {
		return 0, false, nil
	}
	v, err = ParseUint(b)
	if err != nil {
		return 0, false, err
	}
	if v >= v1Unlimited {
		return 0, false, nil
	}
	return v, true, nil
}

// KeyValues iterates over the "key value" lines of flat-keyed files such as
// memory.stat, memory.events and memory.oom_control without allocating.
// Kernels add keys over time, so unknown keys are simply returned too. A
// malformed line is skipped, not the end of the file: the other lines
// still count, and Err reports the first malformed one with how many there
// were.
//
//	kv := KeyValues{Data: b}
//	for kv.Next() { use(kv.Key(), kv.Value()) }
//	if err := kv.Err(); err != nil { ... }
type KeyValues struct {
	Data []byte
	// Prefix, when set, passes over the lines whose key does not start
	// with it: their shape is checked (a key, a space, a digit) but their
	// value is not parsed. v1 memory.stat prints every value twice, the
	// cgroup's own and the hierarchical total_*, and only one half is used.
	Prefix  string
	key     []byte
	val     uint64
	line    int
	err     error
	skipped int
}

// Next advances to the next well-formed line; it returns false at the end.
func (kv *KeyValues) Next() bool {
	for len(kv.Data) > 0 {
		var line []byte
		if i := bytes.IndexByte(kv.Data, '\n'); i >= 0 {
			line, kv.Data = kv.Data[:i], kv.Data[i+1:]
		} else {
			line, kv.Data = kv.Data, nil
		}
		kv.line++
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			kv.malformed(fmt.Errorf("line %d: want \"key value\", got %q", kv.line, line))
			continue
		}
		if kv.Prefix != "" && (sp < len(kv.Prefix) || string(line[:len(kv.Prefix)]) != kv.Prefix) {
			if v := trimValue(line[sp+1:]); len(v) == 0 || v[0] < '0' || v[0] > '9' {
				kv.malformed(fmt.Errorf("line %d: key %s: not an unsigned number: %q", kv.line, line[:sp], v))
			}
			continue
		}
		v, err := parseDecimal(trimValue(line[sp+1:]))
		if err != nil {
			kv.malformed(fmt.Errorf("line %d: key %s: %w", kv.line, line[:sp], err))
			continue
		}
		kv.key, kv.val = line[:sp], v
		return true
	}
	return false
}

// trimValue trims the spaces around a value; the kernel prints none, so
// the common case costs two comparisons.
func trimValue(b []byte) []byte {
	if len(b) > 0 && b[0] > ' ' && b[len(b)-1] > ' ' {
		return b
	}
	return bytes.TrimSpace(b)
}

func (kv *KeyValues) malformed(err error) {
	if kv.err == nil {
		kv.err = err
	}
	kv.skipped++
}

// Key is the key of the current line; it aliases Data.
func (kv *KeyValues) Key() []byte { return kv.key }

// Value is the value of the current line.
func (kv *KeyValues) Value() uint64 { return kv.val }

// Err describes the malformed lines skipped, if any: the first one, and
// how many there were.
func (kv *KeyValues) Err() error {
	if kv.err == nil || kv.skipped == 1 {
		return kv.err
	}
	return fmt.Errorf("%w (and %d more malformed lines skipped)", kv.err, kv.skipped-1)
}

// ParseKeyValues parses a whole flat-keyed file into a map, for callers that
// want every key (OOM enrichment, tests) rather than the hot sampling path.
func ParseKeyValues(b []byte) (map[string]uint64, error) {
	m := make(map[string]uint64)
	kv := KeyValues{Data: b}
	for kv.Next() {
		m[string(kv.Key())] = kv.Value()
	}
	return m, kv.Err()
}

// PressureLine is one line of a PSI file: the kernel's 10-second average
// share of time stalled, in hundredths of a percent (avg10=1.23 is 123),
// and the cumulative stall total in microseconds.
type PressureLine struct {
	Avg10 uint64
	Total uint64
}

// Pressure is a parsed PSI file.
type Pressure struct {
	Some, Full       PressureLine
	HasSome, HasFull bool
}

// ParsePressure parses a PSI file (memory.pressure):
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=1234
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=567
//
// Every line must carry avg10= and total=; avg60 and avg300 are ignored.
func ParsePressure(b []byte) (Pressure, error) {
	var p Pressure
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		raw, err := pressureField(line, " total=")
		if err != nil {
			return Pressure{}, err
		}
		totalV, err := parseDecimal(raw)
		if err != nil {
			return Pressure{}, fmt.Errorf("pressure line %q: %w", line, err)
		}
		avg, err := pressureField(line, " avg10=")
		if err != nil {
			return Pressure{}, err
		}
		avg10, err := parseHundredths(avg)
		if err != nil {
			return Pressure{}, fmt.Errorf("pressure line %q: avg10: %w", line, err)
		}
		l := PressureLine{Avg10: avg10, Total: totalV}
		switch {
		case bytes.HasPrefix(line, []byte("some ")):
			p.Some, p.HasSome = l, true
		case bytes.HasPrefix(line, []byte("full ")):
			p.Full, p.HasFull = l, true
		}
	}
	return p, nil
}

// pressureField returns the value after key (" total=") in a PSI line,
// up to the next space.
func pressureField(line []byte, key string) ([]byte, error) {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return nil, fmt.Errorf("pressure line %q has no %s", line, strings.TrimSpace(key))
	}
	rest := line[i+len(key):]
	if j := bytes.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	}
	return rest, nil
}

// parseHundredths parses a PSI average, printed by the kernel with exactly
// two decimals ("12.34"), into hundredths (1234).
func parseHundredths(b []byte) (uint64, error) {
	dot := bytes.IndexByte(b, '.')
	if dot < 0 || len(b)-dot != 3 {
		return 0, fmt.Errorf("not a number with two decimals: %q", b)
	}
	whole, err := parseDecimal(b[:dot])
	if err != nil {
		return 0, err
	}
	frac, err := parseDecimal(b[dot+1:])
	if err != nil {
		return 0, err
	}
	return whole*100 + frac, nil
}

// parseDecimal parses an unsigned decimal number without allocating. Some
// v1 counters can read as negative (e.g. a racy hierarchical sum); those are
// rejected rather than wrapped into huge values.
func parseDecimal(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errEmpty
	}
	var v uint64
	if len(b) <= 19 { // below 10^19: cannot overflow, no check per digit
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("not an unsigned number: %q", b)
			}
			v = v*10 + uint64(c-'0')
		}
		return v, nil
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not an unsigned number: %q", b)
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, &strconv.NumError{Func: "parseDecimal", Num: string(b), Err: strconv.ErrRange}
		}
		v = v*10 + d
	}
	return v, nil
}
