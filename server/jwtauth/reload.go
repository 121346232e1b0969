package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWatchInterval is how often Watch checks the JWKS file when it is
// given no interval.
const DefaultWatchInterval = 30 * time.Second

// ErrNoJWKSFile is returned by Reload for a verifier that was not made by
// LoadJWKS: it has no file to read again.
var ErrNoJWKSFile = errors.New("jwtauth: not a verifier of a JWKS file (LoadJWKS)")

// jwksFile is the file of a LoadJWKS verifier.
type jwksFile struct {
	path string

	mu    sync.Mutex // one load at a time; guards stamp
	stamp fileStamp  // of the file as last read, loaded or refused

	reloads, failures atomic.Uint64
}

// fileStamp tells whether a file changed: its modification time and size,
// or the error that stat returned.
type fileStamp struct {
	mod  int64 // ns since the epoch
	size int64
	err  string
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: err.Error()}
	}
	return fileStamp{mod: fi.ModTime().UnixNano(), size: fi.Size()}
}

// load reads v's JWKS file and verifies with its keys from then on; on
// error v keeps the keys it had. The caller holds v.jwks.mu, or v is not
// shared yet.
func (v *Verifier) load() error {
	f := &v.jwks
	// stat before reading: a change made while reading changes the stamp
	// again, and Watch loads the file once more
	f.stamp = stampOf(f.path)
	keys, err := readKeys(f.path)
	if err != nil {
		return err
	}
	v.useKeys(keys)
	return nil
}

// readKeys reads and parses a JWKS file.
func readKeys(path string) ([]publicKey, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwtauth: read %s: %w", path, err)
	}
	keys, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return keys, nil
}

// Reload reads the JWKS file of a LoadJWKS verifier again, whether it
// changed or not (sioserver does it on SIGHUP). When the file holds a
// valid JWKS, tokens are verified with its keys from then on: a key no
// longer in the file refuses the connections that come after, while the
// sockets connected with it stay connected. When it does not (missing,
// unreadable, malformed, no usable key), the verifier keeps the keys it
// had and Reload returns why. ErrNoJWKSFile for a verifier of NewHS256 or
// ParseJWKS.
func (v *Verifier) Reload() error {
	f := &v.jwks
	if f.path == "" {
		return ErrNoJWKSFile
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return v.reloadLocked()
}

// reloadLocked loads the file and counts the outcome; v.jwks.mu is held.
func (v *Verifier) reloadLocked() error {
	if err := v.load(); err != nil {
		v.jwks.failures.Add(1)
		return fmt.Errorf("%w; keeping the keys loaded before", err)
	}
	v.jwks.reloads.Add(1)
	return nil
}

// Watch checks the JWKS file of a LoadJWKS verifier every interval
// (DefaultWatchInterval when interval <= 0) and reloads it (as Reload
// does) when its modification time or size changed, or it appeared or
// disappeared, until ctx ends; it returns then (at once for a verifier
// without a file). report, when not nil, is called after each reload with
// its error (nil when the new keys are in use): once per change of the
// file, so a broken file is reported once, not at every check. Run it on
// a goroutine of your own; it holds no goroutine of its own.
//
// A file replaced twice within the file system's time resolution with the
// same size is not seen as changed: call Reload then.
func (v *Verifier) Watch(ctx context.Context, interval time.Duration, report func(error)) {
	f := &v.jwks
	if f.path == "" {
		return
	}
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.mu.Lock()
		if stampOf(f.path) == f.stamp {
			f.mu.Unlock()
			continue
		}
		err := v.reloadLocked()
		f.mu.Unlock()
		if report != nil {
			report(err)
		}
	}
}

// ReloadStats are the counts of a LoadJWKS verifier's reloads (Reload,
// Watch).
type ReloadStats struct {
	// Reloads counts the loads that replaced the keys.
	Reloads uint64
	// Failures counts the loads refused (the keys kept).
	Failures uint64
}

// ReloadStats returns the counts of v's reloads (zero without a file).
func (v *Verifier) ReloadStats() ReloadStats {
	return ReloadStats{Reloads: v.jwks.reloads.Load(), Failures: v.jwks.failures.Load()}
}

// KeyIDs returns the kids of the keys v verifies with ("" for a key
// without kid; none for an HS256 verifier), in the order of the JWKS.
func (v *Verifier) KeyIDs() []string { return slices.Clone(v.keys.Load().kids) }
