// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupmemoryreceiver

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oomsight/oomsight/internal/oomreport"
	"github.com/oomsight/oomsight/internal/printable"
	"github.com/oomsight/oomsight/internal/testing/cgrouptest"
)

// hostileNamesFixture holds the real /dev/kmsg records of
// TestHostileNamesRealKills's kills, between its two markers; the test
// rewrites it when OOMSIGHT_CAPTURE=1.
const hostileNamesFixture = "../../testdata/oom/v1-hostile-names.kmsg"

// liveHostileNames are the names the processes give themselves: a newline
// (which used to split the kill line: no record), a terminal escape that
// clears the screen, an OSC that retitles the window and rings the bell,
// parentheses and the words of the kill line around the name, and a name
// that reads as another kill ("Killed process 1 (init)", which the kernel
// cuts to its first 15 bytes).
var liveHostileNames = []string{
	"m\nevil",
	"m\x1b[2J",
	"\x1b]0;owned\x07",
	"mem)hog",
	"mem(hog",
	", UID 0,",
	"Killed process 1 (init)",
}

// TestHostileNamesRealKills: processes renamed with prctl(PR_SET_NAME) to
// hostile names are OOM-killed for real; each kill gives exactly one
// record, from the kernel's report read on /dev/kmsg, with the process's
// pid and the name the kernel kept byte for byte, and a body that shows
// the name's control bytes as escapes. explain's reading of the same
// kernel records (oomreport.ReadAll, what `oomsight explain` runs) agrees.
func TestHostileNamesRealKills(t *testing.T) {
	s := newOOMScene(t)
	sink := &arrival{path: s.ctr.Path}
	startLogsReceiver(t, oomTestConfig(s), sink)
	dev := openKmsgAtEnd(t)
	writeKmsgMarker(t, "oomsight hostile-names capture begin")

	kept := map[int]string{} // pid → the name the kernel kept
	for _, name := range liveHostileNames {
		p := s.ctr.Start(t, s.memhog)
		ans, err := p.Do("name "+hex.EncodeToString([]byte(name)), 5*time.Second)
		require.NoError(t, err)
		hexKept, ok := strings.CutPrefix(ans, "ok name ")
		require.True(t, ok, ans)
		k, err := hex.DecodeString(hexKept)
		require.NoError(t, err)
		kept[p.Pid] = string(k)
		p.MustDo(t, "anon 40")
		cgrouptest.PaceOOM(t)
		_, err = p.Do("anon 100", 30*time.Second)
		require.Error(t, err, "memhog %q must be OOM-killed", name)
		_, err = p.Wait(10 * time.Second)
		require.NoError(t, err)
	}
	assert.Equal(t, "Killed process ", kept[pidOf(kept, "Killed process ")], "the kernel keeps 15 bytes")

	require.Eventually(t, func() bool { return sink.count() >= len(kept) }, 15*time.Second, 20*time.Millisecond, "records: %d of %d", sink.count(), len(kept))
	time.Sleep(500 * time.Millisecond) // a record more would be a split report
	require.Equal(t, len(kept), sink.count(), "one record per kill")
	sink.mu.Lock()
	seen := map[int64]bool{}
	for _, lr := range sink.recs {
		a := lr.Attributes().AsRaw()
		pid, _ := a["process.pid"].(int64)
		name, ok := kept[int(pid)]
		require.True(t, ok, "a record of pid %d, which is none of the killed processes %v", pid, kept)
		assert.False(t, seen[pid], "a second record of pid %d", pid)
		seen[pid] = true
		assert.Equal(t, name, a["process.executable.name"], "pid %d: the name byte for byte", pid)
		body := lr.Body().Str()
		assert.Contains(t, body, fmt.Sprintf("Process %s (pid %d)", printable.Escape(name), pid))
		assert.Equal(t, printable.Escape(body), body, "pid %d: the body shows no raw control byte: %q", pid, body)
	}
	sink.mu.Unlock()

	writeKmsgMarker(t, "oomsight hostile-names capture end")
	captured := readKmsgBetween(t, dev, "oomsight hostile-names capture begin", "oomsight hostile-names capture end")
	reps, err := oomreport.ReadAll(strings.NewReader(captured))
	require.NoError(t, err)
	got := map[int]string{}
	for _, r := range reps {
		if r.TaskMemcg != s.ctr.Path {
			continue // another OOM on this machine
		}
		_, dup := got[r.PID]
		assert.False(t, dup, "explain: a second report of pid %d", r.PID)
		got[r.PID] = r.Comm
	}
	assert.Equal(t, kept, got, "explain agrees with the receiver")
	if os.Getenv("OOMSIGHT_CAPTURE") == "1" {
		require.NoError(t, os.WriteFile(hostileNamesFixture, []byte(captured), 0o600))
		t.Logf("wrote %s: pids and names %v", hostileNamesFixture, kept)
	}
}

func pidOf(kept map[int]string, name string) int {
	for pid, n := range kept {
		if n == name {
			return pid
		}
	}
	return 0
}

// openKmsgAtEnd opens /dev/kmsg for reading the records logged from now on.
func openKmsgAtEnd(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		cgrouptest.Unavailable(t, "reading /dev/kmsg: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	_, err = f.Seek(0, 2) // SEEK_END: only new records
	require.NoError(t, err)
	return f
}

// writeKmsgMarker logs a record of the test's own to /dev/kmsg.
func writeKmsgMarker(t *testing.T, msg string) {
	t.Helper()
	require.NoError(t, os.WriteFile("/dev/kmsg", []byte(msg+"\n"), 0))
}

// readKmsgBetween reads the records already logged and returns, as lines of
// raw /dev/kmsg text (dictionary lines left out, as the other fixtures),
// those strictly between the markers: other processes' records that came in
// between are real and kept.
func readKmsgBetween(t *testing.T, f *os.File, begin, end string) string {
	t.Helper()
	buf := make([]byte, 16<<10)
	var out bytes.Buffer
	in := false
	for {
		n, err := f.Read(buf)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if errors.Is(err, syscall.EPIPE) {
			t.Fatal("kmsg records were overwritten during the capture")
		}
		require.NoError(t, err)
		rec, _, _ := strings.Cut(string(buf[:n]), "\n")
		_, msg, _ := strings.Cut(rec, ";")
		switch {
		case msg == begin:
			in = true
		case msg == end:
			require.True(t, in, "end marker before the begin marker")
			return out.String()
		case in:
			out.WriteString(rec + "\n")
		}
	}
	t.Fatal("the end marker was not found")
	return ""
}
