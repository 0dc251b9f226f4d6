package cgroupfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
}

// Open opens the memory files of the cgroup at path (relative to h.Dir, "/"
// for the root). Files that this kernel does not have (memory.peak before
// 5.19, memory.oom_control's oom_kill before 4.13) are left out.
func Open(h Hierarchy, path string, opt Optional) (*Cgroup, error) {
	dir := h.Abs(path)
	c := &Cgroup{path: path, specs: specsFor(h.Version)}
	c.fds = make([]int, len(c.specs))
	for i := range c.fds {
		c.fds[i] = -1 // before any open: Close on failure must not close fd 0
	}
	for i, spec := range c.specs {
		if spec.optional != 0 && opt&spec.optional == 0 {
			continue
		}
		fd, err := unix.Open(filepath.Join(dir, spec.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			c.fds[i] = fd
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
	return c, nil
}

// Path is the cgroup's path relative to the hierarchy root.
func (c *Cgroup) Path() string { return c.path }

// Close releases the file descriptors. It is idempotent.
func (c *Cgroup) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, fd := range c.fds {
		if fd >= 0 {
			_ = unix.Close(fd)
			c.fds[i] = closedFD
		}
	}
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
// files that failed; the rest of the sample is valid in that case.
func (r *Reader) Read(c *Cgroup, now time.Time, s *Sample) error {
	s.Reset()
	s.Time = now
	c.mu.RLock()
	defer c.mu.RUnlock()
	var errs []error
	for i, fd := range c.fds {
		if fd == closedFD {
			return fmt.Errorf("cgroup %s: %w", c.path, ErrVanished)
		}
		if fd < 0 {
			continue
		}
		b, err := r.pread(fd)
		if err != nil {
			if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("cgroup %s: %w", c.path, ErrVanished)
			}
			errs = append(errs, &FileError{Path: c.path, File: c.specs[i].name, Err: err})
			continue
		}
		if err := c.specs[i].parse(b, s); err != nil {
			errs = append(errs, &FileError{Path: c.path, File: c.specs[i].name, Err: err})
		}
	}
	s.deriveWorkingSet()
	return errors.Join(errs...)
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
