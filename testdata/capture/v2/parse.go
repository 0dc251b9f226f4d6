// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

//go:build ignore

// parse splits the capture VM's serial console log into fixture files.
//
//	go run ./testdata/capture/v2/parse.go CONSOLE_LOG OUT_DIR
//
// It strips the '\r' the serial console adds, writes OUT_DIR/console.log,
// and for every block
//
//	@@@OOMSIGHT BEGIN FILE <dest>@@@\n<content>\n@@@OOMSIGHT END FILE <dest> md5=<md5>@@@
//
// writes <content> to OUT_DIR/<dest> after checking its md5 against the one
// computed inside the VM. It exits non-zero on any mismatch or if the VM did
// not reach the DONE marker.
package main

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: parse CONSOLE_LOG OUT_DIR")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	out := os.Args[2]
	log := strings.ReplaceAll(string(raw), "\r", "")
	if err := os.MkdirAll(out, 0o755); err != nil {
		fail(err)
	}
	if err := os.WriteFile(filepath.Join(out, "console.log"), []byte(log), 0o644); err != nil {
		fail(err)
	}

	begin := regexp.MustCompile(`(?m)^@@@OOMSIGHT BEGIN FILE (\S+)@@@\n`)
	bad, n := 0, 0
	for _, m := range begin.FindAllStringSubmatchIndex(log, -1) {
		dest := log[m[2]:m[3]]
		rest := log[m[1]:]
		endRe := regexp.MustCompile(`(?m)^@@@OOMSIGHT END FILE ` + regexp.QuoteMeta(dest) + ` md5=([0-9a-f]{32})@@@$`)
		e := endRe.FindStringSubmatchIndex(rest)
		if e == nil {
			fmt.Fprintf(os.Stderr, "%s: no END marker\n", dest)
			bad++
			continue
		}
		content := rest[:e[0]]
		if !strings.HasSuffix(content, "\n") {
			fmt.Fprintf(os.Stderr, "%s: block does not end with the extra newline\n", dest)
			bad++
			continue
		}
		content = strings.TrimSuffix(content, "\n")
		sum := md5.Sum([]byte(content))
		if want := rest[e[2]:e[3]]; hex.EncodeToString(sum[:]) != want {
			fmt.Fprintf(os.Stderr, "%s: md5 mismatch: got %x want %s\n", dest, sum, want)
			bad++
			continue
		}
		clean := filepath.Clean(dest)
		if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") {
			fmt.Fprintf(os.Stderr, "%s: refusing unsafe path\n", dest)
			bad++
			continue
		}
		p := filepath.Join(out, clean)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fail(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			fail(err)
		}
		n++
	}
	fmt.Printf("parse: wrote %d files to %s\n", n, out)
	for _, m := range regexp.MustCompile(`(?m)^@@@OOMSIGHT MISSING FILE .*$`).FindAllString(log, -1) {
		fmt.Fprintln(os.Stderr, "parse: VM reported:", m)
	}
	if !strings.Contains(log, "@@@OOMSIGHT DONE@@@") {
		fmt.Fprintln(os.Stderr, "parse: VM did not reach the DONE marker")
		bad++
	}
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "parse: %d problems\n", bad)
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "parse:", err)
	os.Exit(1)
}
