// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package qemuvm // import "github.com/oomsight/oomsight/internal/testing/qemuvm"

import "strconv"

// VersionLess compares strings with embedded numbers numerically
// ("6.1.0-9" < "6.1.0-56"), to pick the newest kernel image.
func VersionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da != "" && db != "" {
			na, _ := strconv.Atoi(da)
			nb, _ := strconv.Atoi(db)
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
