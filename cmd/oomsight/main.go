// Command oomsight is oomsight's forensic CLI. For now it reports its
// version; `oomsight explain` (kernel OOM reports from pasted logs) comes
// with the OOM work.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// version is the release of the oomsight tools; otelcol-oomsight carries
// the same number (builder-config.yaml).
const version = "0.1.0"

const usage = `usage: oomsight <command>

commands:
  version    print the version of oomsight
  help       print this help
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 on
// success, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "oomsight %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "oomsight: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
