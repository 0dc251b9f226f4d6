// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Command oomsight is oomsight's forensic CLI: `oomsight explain` turns
// kernel OOM reports pasted from dmesg, syslog, journalctl -k or a raw
// /dev/kmsg dump into one structured explanation per killed process;
// `oomsight snapshot` prints a cgroup's process snapshot as the agent
// would put it on a record (to audit the command lines' redaction).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/oomsight/oomsight/internal/version"
)

const usage = `usage: oomsight <command>

commands:
  explain [--format text|json] [--max-tasks N] [--page-size BYTES]
          [--utc-offset ±HH:MM] [FILE|-]
             explain the kernel OOM kills in a kernel log pasted from any
             kernel since 2.6.32 (dmesg in any form, syslog, journalctl -k,
             raw /dev/kmsg records, with line numbers or table columns
             before the kernel's text; default: stdin); exit 1 when the log
             holds no OOM kill; "oomsight explain -h" for the flags
  snapshot [--command-line redacted|name|off] [--root DIR] [--format text|json]
           CGROUP
             print the processes of a cgroup (its cgroup.path, as records
             carry it) with their memory and command lines exactly as the
             agent would put them on a record, every process listed; how
             to audit the redaction; "oomsight snapshot -h" for the flags
  tls-secret --dns NAME[,NAME...] [--namespace NS] [--secret NAME]
             [--validity DURATION]
             inside a Kubernetes pod: mint the CA, gateway and agent
             certificates of OTLP between oomsight's agents and gateway
             into a Secret, unless it exists (deploy/kubernetes/tls.yaml)
  version    print the version of oomsight
  help       print this help
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 on
// success, 1 when explain found no OOM kill, 2 for a usage error. stdin is
// a parameter so that tests can feed explain.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "explain":
		return explain(args[1:], stdin, stdout, stderr)
	case "snapshot":
		return snapshot(args[1:], stdout, stderr)
	case "tls-secret":
		return tlsSecret(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "oomsight %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "oomsight: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// parseInterleaved parses args with fs, flags before or after the
// positional arguments (parsed again after each), and returns the
// positional ones; !ok with the exit code on -h (0) or a bad flag (2,
// the flag package has said why).
func parseInterleaved(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}
