// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package qemuvm // import "github.com/oomsight/oomsight/internal/testing/qemuvm"

// A minimal writer of the newc cpio format the kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst),
// uncompressed, so that neither the host nor the emulated guest spends
// time on compression, and no cpio package is needed.

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

type cpioEntry struct {
	name                 string
	mode                 uint32
	data                 []byte // file contents, or
	src                  string // a file to copy
	rdevMajor, rdevMinor uint32
}

func writeInitramfs(out string, entries []cpioEntry) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	pad := func() error {
		if n := (4 - off%4) % 4; n > 0 {
			k, writeErr := w.Write(make([]byte, n))
			off += int64(k)
			return writeErr
		}
		return nil
	}
	header := func(ino int, e cpioEntry, size int64) error {
		nlink := 1
		if e.mode&0o170000 == modeDir {
			nlink = 2
		}
		h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.mode, 0, 0, nlink, 0, size, 0, 0, e.rdevMajor, e.rdevMinor, len(e.name)+1, 0)
		k, writeStringErr := w.WriteString(h + e.name + "\x00")
		off += int64(k)
		if writeStringErr != nil {
			return writeStringErr
		}
		return pad()
	}
	for i, e := range entries {
		size := int64(len(e.data))
		var src *os.File
		if e.src != "" {
			if src, err = os.Open(e.src); err != nil {
				f.Close()
				return err
			}
			st, statErr := src.Stat()
			if statErr != nil {
				src.Close()
				f.Close()
				return statErr
			}
			size = st.Size()
		}
		if headerErr := header(i+1, e, size); headerErr != nil {
			f.Close()
			return headerErr
		}
		var k int64
		if src != nil {
			k, err = io.Copy(w, src)
			src.Close()
		} else {
			var n int
			n, err = w.Write(e.data)
			k = int64(n)
		}
		off += k
		if err == nil && k != size {
			err = fmt.Errorf("%s: copied %d of %d bytes", e.name, k, size)
		}
		if err == nil {
			err = pad()
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := header(0, cpioEntry{name: "TRAILER!!!"}, 0); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
