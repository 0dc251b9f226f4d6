package main

import (
	"io"
	"os"
	"testing"
	"runtime/pprof"
)

func TestZZProf(t *testing.T) {
	f, _ := os.Create("/tmp/i24cost/cpu.prof")
	pprof.StartCPUProfile(f)
	in, _ := os.Open("/tmp/i24cost/gen/kills-100k.kmsg")
	explain([]string{"--format", "json"}, in, io.Discard, io.Discard)
	pprof.StopCPUProfile()
}
