// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

// Package checkpoint remembers how far the kernel log has been turned into
// OOM records, so that a restarted collector emits exactly the kills it has
// not emitted yet: none lost, none repeated.
//
// A position is the boot it belongs to and the kmsg sequence number of the
// last kill emitted. Sequence numbers restart at every boot, so a position
// from another boot means "nothing of this boot was emitted yet".
package checkpoint // import "github.com/oomsight/oomsight/internal/checkpoint"

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// BootIDFile is where the kernel publishes the current boot's id.
const BootIDFile = "/proc/sys/kernel/random/boot_id"

// Position is what the file holds.
type Position struct {
	BootID string `json:"boot_id"`
	// Seq is the kmsg sequence number of the last kill handled.
	Seq uint64 `json:"seq"`
	// Undelivered are kills up to Seq whose records the pipeline refused
	// (after retries): a restart emits them again, so the file holds what
	// was really delivered. At most MaxUndelivered, the newest.
	Undelivered []uint64 `json:"undelivered,omitempty"`
}

// MaxUndelivered bounds Position.Undelivered.
const MaxUndelivered = 256

// Delivered reports whether the kill at seq was delivered according to p:
// handled (at or before Seq) and not refused.
func (p Position) Delivered(seq uint64) bool {
	if seq > p.Seq {
		return false
	}
	return !slices.Contains(p.Undelivered, seq)
}

// Handled returns p after the kill at seq was handled: delivered (ok) or
// refused for good (it stays undelivered, so a restart tries again).
func (p Position) Handled(seq uint64, ok bool) Position {
	out := Position{BootID: p.BootID, Seq: max(p.Seq, seq)}
	for _, u := range p.Undelivered {
		if u != seq {
			out.Undelivered = append(out.Undelivered, u)
		}
	}
	if !ok {
		out.Undelivered = append(out.Undelivered, seq)
		if len(out.Undelivered) > MaxUndelivered {
			out.Undelivered = out.Undelivered[len(out.Undelivered)-MaxUndelivered:]
		}
	}
	return out
}

// File is a checkpoint file.
type File struct {
	path string
}

// New returns the checkpoint at path; nothing is read or written yet.
func New(path string) *File { return &File{path: path} }

// Load returns the saved position. ok is false when there is none yet (a
// first start). A file that exists but cannot be read or parsed is an
// error: silently starting over would repeat every kill in the ring.
func (f *File) Load() (pos Position, ok bool, err error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, err
	}
	if err := json.Unmarshal(b, &pos); err != nil {
		return Position{}, false, fmt.Errorf("checkpoint %s is corrupt (%w); delete it to start over", f.path, err)
	}
	if pos.BootID == "" {
		return Position{}, false, fmt.Errorf("checkpoint %s has no boot_id; delete it to start over", f.path)
	}
	return pos, true, nil
}

// Save writes pos atomically: a crash leaves the old or the new position,
// never a torn file.
func (f *File) Save(pos Position) error {
	b, err := json.Marshal(pos)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone after the rename; left over only on error
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.path)
}

// CheckWritable fails early when the checkpoint cannot be written, so a
// bad path is reported at start rather than after the first kill.
func (f *File) CheckWritable() error {
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(f.path)+".probe*")
	if err != nil {
		return err
	}
	_ = tmp.Close()
	return os.Remove(tmp.Name())
}

// ReadBootID returns the current boot's id from file (BootIDFile).
func ReadBootID(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("reading boot id: %s is empty", file)
	}
	return id, nil
}

// Resume tells a reader what of the current boot was delivered already:
// the saved position when it is of this boot (resume true), otherwise an
// empty one for this boot (every kill in the ring is new).
func Resume(saved Position, haveSaved bool, bootID string) (Position, bool) {
	if !haveSaved || saved.BootID != bootID {
		return Position{BootID: bootID}, false
	}
	return saved, true
}
