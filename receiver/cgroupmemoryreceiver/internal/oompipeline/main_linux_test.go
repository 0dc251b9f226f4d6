// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package oompipeline

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests on a goroutine left running (a stage,
// a survival check), as the receiver's generated TestMain does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
