package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/docker-bottle/docker-bottle/probe"
)

// maxFound bounds the places reported.
const maxFound = 50

// matcher finds any window of a secret's length whose sha256 is a
// secret's: the probe holds hashes only, never a secret.
type matcher struct {
	lens   []int
	hashes map[int]map[[32]byte]bool
}

func newMatcher(secrets []probe.SecretHash) (*matcher, error) {
	m := &matcher{hashes: map[int]map[[32]byte]bool{}}
	for i, s := range secrets {
		b, err := hex.DecodeString(s.SHA256)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("secret %d: sha256 %q is not 64 hex digits", i+1, s.SHA256)
		}
		if m.hashes[s.Len] == nil {
			m.hashes[s.Len] = map[[32]byte]bool{}
			m.lens = append(m.lens, s.Len)
		}
		m.hashes[s.Len][[32]byte(b)] = true
	}
	slices.Sort(m.lens)
	return m, nil
}

// find returns the offset of the first window that is a secret, or -1.
func (m *matcher) find(data []byte) int {
	for _, n := range m.lens {
		set := m.hashes[n]
		for i := 0; i+n <= len(data); i++ {
			if set[sha256.Sum256(data[i:i+n])] {
				return i
			}
		}
	}
	return -1
}

// scanPaths are the places a secret must never be: the bottle's own files,
// the agent's home and workspace, plus any the caller adds.
func scanPaths(cfg probe.Config, getenv func(string) string) []string {
	paths := []string{"/run/bottle", "/etc/docker-bottle"}
	if h := getenv("HOME"); h != "" {
		paths = append(paths, h)
	}
	paths = append(paths, cfg.Workspace)
	paths = append(paths, cfg.Scan...)
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		p = filepath.Clean(p)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// pseudo file systems are never walked: they are endless or not files.
// /proc/self/environ and /proc/self/cmdline are read on their own.
var pseudo = []string{"/proc", "/sys", "/dev"}

type scan struct {
	m       *matcher
	budget  int64
	mu      sync.Mutex
	counts  probe.ScanCounts
	found   []string
	seen    map[fileKey]bool
	sem     chan struct{}
	wg      sync.WaitGroup
	pending int64 // bytes promised to running reads
}

// secretsCheck searches the environment and files for the secrets.
func secretsCheck(cfg probe.Config, environ []string, getenv func(string) string) probe.Check {
	c := probe.Check{Kind: probe.KindSecrets, Tried: "a search of the environment and files for the real secrets (by sha256)"}
	if len(cfg.Secrets) == 0 {
		c.Outcome, c.Result = probe.OutcomeSkipped, "no secret to look for was given (--secret-sha256, --secret-len)"
		return c
	}
	m, err := newMatcher(cfg.Secrets)
	if err != nil {
		c.Outcome, c.Result = probe.OutcomeError, err.Error()
		return c
	}
	s := &scan{m: m, budget: cfg.ScanBudget, seen: map[fileKey]bool{}, sem: make(chan struct{}, runtime.NumCPU())}
	s.counts.Secrets = len(cfg.Secrets)
	for _, kv := range environ {
		s.counts.EnvValues++
		if m.find([]byte(kv)) >= 0 {
			name, _, _ := strings.Cut(kv, "=")
			s.add("env " + name)
		}
	}
	for _, f := range []string{"/proc/self/environ", "/proc/self/cmdline"} {
		s.readSpecial(f)
	}
	paths := scanPaths(cfg, getenv)
	s.counts.Paths = paths
	for _, p := range paths {
		s.walk(p)
	}
	s.wg.Wait()
	counts := s.counts
	c.Evidence.Scanned = &counts
	c.Evidence.Found = s.found
	if len(s.found) > 0 {
		c.Outcome = probe.OutcomeFound
		c.Result = fmt.Sprintf("a real secret is inside the bottle, in %d place(s): %s", len(s.found), strings.Join(s.found, ", "))
		return c
	}
	c.Outcome = probe.OutcomeClean
	c.Result = fmt.Sprintf("no secret found in %d environment entries and %d files (%d bytes)", counts.EnvValues, counts.Files, counts.Bytes)
	if counts.Truncated {
		c.Result += fmt.Sprintf("; the budget of %d bytes ran out, %d files were not read", s.budget, counts.Skipped)
	}
	return c
}

func (s *scan) add(where string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.found) < maxFound {
		s.found = append(s.found, where)
	}
}

// readSpecial reads a /proc file, whose size stat does not tell.
func (s *scan) readSpecial(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close() //nolint:errcheck // only read
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes))
	if err != nil {
		return
	}
	s.counts.Files++
	s.counts.Bytes += int64(len(data))
	if s.m.find(data) >= 0 {
		s.add(path)
	}
}

// maxFileBytes: larger files are not searched.
const maxFileBytes = probe.MaxFileBytes

func (s *scan) walk(root string) {
	// A root that is a link (a home on another volume) is searched where
	// it points; links below it are not followed into directories.
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	//nolint:errcheck // the callback returns only nil and SkipDir, so WalkDir returns nil
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != root || !os.IsNotExist(err) {
				s.skip(false)
			}
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if slices.Contains(pseudo, path) {
				return fs.SkipDir
			}
			return nil
		}
		// Symbolic links are followed to files only: a linked directory
		// could loop.
		info, err := os.Stat(path)
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		s.file(path, info)
		return nil
	})
}

func (s *scan) skip(budget bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Skipped++
	if budget {
		s.counts.Truncated = true
	}
}

func (s *scan) file(path string, info fs.FileInfo) {
	if info.Size() > maxFileBytes {
		s.skip(false)
		return
	}
	s.mu.Lock()
	key, ok := keyOf(info)
	if ok && s.seen[key] {
		s.mu.Unlock()
		return
	}
	if ok {
		s.seen[key] = true
	}
	if s.counts.Bytes+s.pending+info.Size() > s.budget {
		s.counts.Skipped++
		s.counts.Truncated = true
		s.mu.Unlock()
		return
	}
	s.pending += info.Size()
	s.mu.Unlock()

	s.sem <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		data, err := readLimited(path, maxFileBytes)
		s.mu.Lock()
		s.pending -= info.Size()
		if err != nil {
			s.counts.Skipped++
			s.mu.Unlock()
			return
		}
		s.counts.Files++
		s.counts.Bytes += int64(len(data))
		s.mu.Unlock()
		if off := s.m.find(data); off >= 0 {
			s.add(fmt.Sprintf("file %s (at byte %d)", path, off))
		}
	}()
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // only read
	return io.ReadAll(io.LimitReader(f, limit))
}
