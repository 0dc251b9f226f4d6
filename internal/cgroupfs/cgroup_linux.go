// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package cgroupfs // import "github.com/oomsight/oomsight/internal/cgroupfs"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrVanished means the cgroup was removed (its directory is gone or its
// files answer ENODEV). Cgroups come and go constantly; callers drop it
// quietly.
var ErrVanished = errors.New("cgroup vanished")

// ErrNotAccounted means the cgroup has no memory usage file: the v2 root
// cgroup, or a v2 cgroup whose parent does not enable the memory controller.
var ErrNotAccounted = errors.New("cgroup has no memory accounting")

// closedFD marks a descriptor released by Close (-1 marks a file the kernel
// does not have).
const closedFD = -2

// Cgroup holds the memory files of one cgroup open, so that a sample costs
// one pread per file and no open/close. It is safe for concurrent use: a
// Close waits for reads in progress, so a closed descriptor number is never
// read after the kernel hands it out again.
type Cgroup struct {
	mu    sync.RWMutex
	path  string
	specs []fileSpec
	fds   []int // -1 where the file does not exist on this kernel
	// peakFD is the descriptor of the peak file when it is reset after each
	// read (-1 otherwise): see PeakResets.
	peakFD int

	// The limits read last, while a LimitWatch follows every limit file
	// open (limitWatched): limitStale is set until the first read and
	// again by a write to any of them; limitVals (under limitMu) holds the
	// limitFields they gave, absent when unlimited.
	watch        *LimitWatch
	limitWatched atomic.Bool
	limitStale   atomic.Bool
	limitMu      sync.Mutex
	limitVals    Sample
}

// resetValue is written to a peak file to reset it. The kernel ignores what
// is written (v1 resets the watermark to the current usage, v2 6.12+ the
// watermark of this open file only).
var resetValue = []byte("0")

// Open opens the memory files of the cgroup at path (relative to h.Dir, "/"
// for the root). Files that this kernel does not have (memory.peak before
// 5.19, memory.oom_control's oom_kill before 4.13) are left out.
//
// The peak file is held for writing, so that each Read resets it, where
// that is exact and harmless: v2 memory.peak on 6.12+, whose reset applies
// to this descriptor only, and v1 memory.max_usage_in_bytes only with
// WithPeakReset (its reset is global). Where the kernel or a read-only
// mount refuses it, the peak stays the lifetime peak (see PeakResets).
func Open(h Hierarchy, path string, opt Optional) (*Cgroup, error) {
	return OpenWatched(h, path, opt, nil)
}

// OpenWatched is Open with the cgroup's limit file followed by w (nil:
// not followed), so that Read reads the limit only after it was written.
func OpenWatched(h Hierarchy, path string, opt Optional, w *LimitWatch) (*Cgroup, error) {
	dir := h.Abs(path)
	c := &Cgroup{path: path, specs: specsFor(h.Version), peakFD: -1}
	c.limitStale.Store(true)
	c.fds = make([]int, len(c.specs))
	for i := range c.fds {
		c.fds[i] = -1 // before any open: Close on failure must not close fd 0
	}
	for i, spec := range c.specs {
		if spec.optional != 0 && opt&spec.optional == 0 {
			continue
		}
		if spec.optional == WithLifetimePeak && c.peakFD < 0 {
			continue // the peak file is not reset: Peak is the lifetime peak
		}
		fd, err := openSpec(dir, spec, h.Version == V2 || opt&WithPeakReset != 0)
		if err == nil {
			c.fds[i] = fd
			if spec.peak && resets(fd) {
				c.peakFD = fd
			}
			continue
		}
		if spec.required || !errors.Is(err, unix.ENOENT) {
			c.Close()
			if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) {
				return nil, fmt.Errorf("cgroup %s: %w", path, ErrVanished)
			}
			if spec.required && errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("cgroup %s: %w (no %s)", path, ErrNotAccounted, spec.name)
			}
			return nil, &FileError{Path: path, File: spec.name, Err: err}
		}
	}
	if w != nil {
		c.watchLimits(w, dir)
	}
	return c, nil
}

// watchLimits follows every open limit file of c with w, before the first
// read so that no write goes unseen. All or none: a limit file without a
// watch (fs.inotify.max_user_watches reached) would keep a stale value, so
// then c reads its limits every time.
func (c *Cgroup) watchLimits(w *LimitWatch, dir string) {
	n := 0
	for i, spec := range c.specs {
		if !spec.limit || c.fds[i] < 0 {
			continue
		}
		if !w.add(c, i, filepath.Join(dir, spec.name)) {
			w.remove(c)
			return
		}
		n++
	}
	if n > 0 {
		c.watch = w
		c.limitWatched.Store(true)
	}
}

// openSpec opens one memory file: its alternative when the kernel has no
// file of that name, and the peak file read-write when resetPeak allows it
// and the kernel and the mount do (read-only otherwise).
func openSpec(dir string, spec fileSpec, resetPeak bool) (int, error) {
	name := filepath.Join(dir, spec.name)
	if spec.peak && resetPeak {
		if fd, err := unix.Open(name, unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
			return fd, nil
		}
	}
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) && spec.alt != "" {
		fd, err = unix.Open(filepath.Join(dir, spec.alt), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	return fd, err
}

// resets reports whether fd is a cgroup file opened for writing and a
// reset through it works (v2 memory.peak before 6.12 has no write handler).
// Files on other filesystems (copied fixture trees) are never written.
func resets(fd int) bool {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_ACCMODE != unix.O_RDWR {
		return false
	}
	var fs unix.Statfs_t
	if err = unix.Fstatfs(fd, &fs); err != nil || (fs.Type != unix.CGROUP_SUPER_MAGIC && fs.Type != unix.CGROUP2_SUPER_MAGIC) {
		return false
	}
	_, err = unix.Pwrite(fd, resetValue, 0)
	return err == nil
}

// PeakResets reports whether each Read resets the peak file, so that a
// sample's Peak is the highest usage since the previous Read (exact) rather
// than the cgroup's lifetime peak.
func (c *Cgroup) PeakResets() bool { return c.peakFD >= 0 }

// ReadFiles names the files each Read of c reads, in read order (the
// alternative's name where the kernel lacks the first): what a benchmark's
// floor reads. The limit files are left out unless withLimits: a cgroup
// that a LimitWatch follows reads them only after a write.
func (c *Cgroup) ReadFiles(withLimits bool) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var names []string
	for i, fd := range c.fds {
		if fd < 0 || c.specs[i].limit && !withLimits {
			continue
		}
		name := c.specs[i].name
		if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err == nil {
			name = filepath.Base(target)
		}
		names = append(names, name)
	}
	return names
}

// Path is the cgroup's path relative to the hierarchy root.
func (c *Cgroup) Path() string { return c.path }

// Close releases the file descriptors. It is idempotent.
func (c *Cgroup) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch != nil {
		c.watch.remove(c)
		c.watch = nil
		c.limitWatched.Store(false)
	}
	for i, fd := range c.fds {
		if fd >= 0 {
			_ = unix.Close(fd)
			c.fds[i] = closedFD
		}
	}
	c.peakFD = -1
}

// Reader reads cgroups into samples through a scratch buffer it owns, so
// that one Reader per goroutine reads any number of cgroups without
// allocating.
type Reader struct {
	buf []byte
}

// NewReader returns a Reader with a buffer large enough for any memory.stat
// seen so far; it grows if a kernel prints more.
func NewReader() *Reader {
	return &Reader{buf: make([]byte, 8<<10)}
}

// Read fills s with a fresh reading of c, taken at now. It returns
// ErrVanished when the cgroup is gone, or a joined list of *FileError for
// files that failed; the rest of the sample is valid in that case. Where
// PeakResets, the peak file is reset right after it is read.
func (r *Reader) Read(c *Cgroup, now time.Time, s *Sample) error {
	s.Reset()
	s.Time = now
	c.mu.RLock()
	defer c.mu.RUnlock()
	var errs []error
	limitsDone := false
	for i, fd := range c.fds {
		if fd == -1 {
			continue // not on this kernel, or not asked for
		}
		var err error
		switch {
		case c.specs[i].limit && c.limitWatched.Load():
			if limitsDone {
				continue
			}
			limitsDone = true
			err = r.limits(c, s)
		default:
			err = r.parse(c, i, s)
		}
		if errors.Is(err, ErrVanished) {
			return err
		}
		if err != nil {
			errs = append(errs, err)
			continue // a peak not read is not reset either
		}
		if fd == c.peakFD {
			if _, err := unix.Pwrite(fd, resetValue, 0); err != nil {
				errs = append(errs, &FileError{Path: c.path, File: c.specs[i].name, Err: fmt.Errorf("resetting the peak: %w", err)})
			}
		}
	}
	s.PeakSinceRead = c.peakFD >= 0
	if v, ok := s.Get(Peak); ok && !s.PeakSinceRead {
		s.Set(PeakLifetime, v)
	}
	s.deriveWorkingSet()
	return errors.Join(errs...)
}

// parse reads the i-th memory file of c into s.
func (r *Reader) parse(c *Cgroup, i int, s *Sample) error {
	b, err := r.file(c, i)
	if err != nil {
		return err
	}
	if err := c.specs[i].parse(b, s); err != nil {
		return &FileError{Path: c.path, File: c.specs[i].name, Err: err}
	}
	return nil
}

// limits fills in the limits of c, whose limit files a LimitWatch
// follows: the values read last while nobody wrote any of the files since,
// or a fresh reading of all of them. The cache's lock makes a concurrent
// Read wait for a reading in progress rather than take the values it
// replaces.
func (r *Reader) limits(c *Cgroup, s *Sample) error {
	c.limitMu.Lock()
	defer c.limitMu.Unlock()
	if !c.limitStale.Load() {
		copyFields(s, &c.limitVals, limitFields[:])
		return nil
	}
	c.limitStale.Store(false) // before the read: a write from now on is seen
	var errs []error
	for i, fd := range c.fds {
		if !c.specs[i].limit || fd == -1 {
			continue
		}
		if err := r.parse(c, i, s); err != nil {
			if errors.Is(err, ErrVanished) {
				c.limitStale.Store(true)
				return err
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		c.limitStale.Store(true)
		return errors.Join(errs...)
	}
	c.limitVals.Reset()
	copyFields(&c.limitVals, s, limitFields[:])
	return nil
}

// copyFields sets in dst the fields of fs that src has.
func copyFields(dst, src *Sample, fs []Field) {
	for _, f := range fs {
		if v, ok := src.Get(f); ok {
			dst.Set(f, v)
		}
	}
}

// Counters reads only the failcnt and oom_kills counters of c into s (v2
// memory.events.local; v1 memory.failcnt and memory.oom_control): what the
// event sampler checks to tell which cgroup a v2 notification is about.
func (r *Reader) Counters(c *Cgroup, s *Sample) error {
	s.Reset()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, fd := range c.fds {
		if !c.specs[i].counters || fd == -1 {
			continue
		}
		if err := r.parse(c, i, s); err != nil {
			return err
		}
	}
	return nil
}

// Stat reads only memory.stat of c into s, taken at now (its fields,
// Unreclaimable included): what the fast pass reads of a cgroup whose
// usage climbs, for the time-to-OOM fit between two collections.
func (r *Reader) Stat(c *Cgroup, now time.Time, s *Sample) error {
	s.Reset()
	s.Time = now
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, fd := range c.fds {
		if !c.specs[i].stat || fd == -1 {
			continue
		}
		if err := r.parse(c, i, s); err != nil {
			return err
		}
	}
	return nil
}

// Usage reads only the usage of c (memory.usage_in_bytes or memory.current):
// the light read of the fast pass, one pread on a held descriptor.
func (r *Reader) Usage(c *Cgroup) (uint64, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, err := r.file(c, 0) // the usage file is first and required
	if err != nil {
		return 0, err
	}
	v, err := ParseUint(b)
	if err != nil {
		return 0, &FileError{Path: c.path, File: c.specs[0].name, Err: err}
	}
	return v, nil
}

// file reads the i-th memory file of c (the caller holds c.mu): its
// contents, an error wrapping ErrVanished when the cgroup is gone (closed,
// or the kernel answers ENODEV/ENOENT), or a *FileError.
func (r *Reader) file(c *Cgroup, i int) ([]byte, error) {
	fd := c.fds[i]
	if fd == closedFD {
		return nil, fmt.Errorf("cgroup %s: %w", c.path, ErrVanished)
	}
	b, err := r.pread(fd)
	if err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("cgroup %s: %w", c.path, ErrVanished)
		}
		return nil, &FileError{Path: c.path, File: c.specs[i].name, Err: err}
	}
	return b, nil
}

// pread reads a whole cgroup file from offset 0. cgroup files are generated
// on read, so one read returns everything when the buffer is big enough; a
// full buffer means it may not have been, and it is doubled and read again.
func (r *Reader) pread(fd int) ([]byte, error) {
	for {
		n, err := unix.Pread(fd, r.buf, 0)
		if err != nil {
			return nil, err
		}
		if n < len(r.buf) {
			return r.buf[:n], nil
		}
		r.buf = make([]byte, 2*len(r.buf))
	}
}
