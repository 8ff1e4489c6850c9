// Package store keeps image blobs content-addressed on disk, across runs, in
// the user's cache dir: the embedded registry serves them, the export from
// the engine and the bottle layer write them, prune removes them. Blobs are
// streamed in and out; nothing holds a whole blob in memory.
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNotFound is returned for a blob or record the store does not hold.
var ErrNotFound = errors.New("not found in the image cache")

// Store is a directory of blobs named by their sha256 digest
// (blobs/sha256/<hex>), small JSON records (<kind>/<name>.json) and a
// scratch dir for blobs being written.
type Store struct {
	root string
}

// Open opens (creating it, mode 0700) the store at root.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("image cache: no directory given")
	}
	for _, d := range []string{root, filepath.Join(root, "blobs", "sha256"), filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image cache: %w; check that the cache dir is writable or set another", err)
		}
	}
	return &Store{root: root}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// Path is where the blob h lives (whether or not it is there).
func (s *Store) Path(h v1.Hash) string {
	return filepath.Join(s.root, "blobs", h.Algorithm, h.Hex)
}

func checkHash(h v1.Hash) error {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return fmt.Errorf("unsupported digest %q: the image cache holds sha256 blobs only", h.String())
	}
	if _, err := hex.DecodeString(h.Hex); err != nil {
		return fmt.Errorf("malformed digest %q", h.String())
	}
	return nil
}

// Stat returns the size of blob h. The file's size is trusted: blobs are
// verified when written, and re-hashing a GiB on every registry HEAD (as
// go-containerregistry's disk handler does) would cost seconds.
func (s *Store) Stat(h v1.Hash) (int64, error) {
	if err := checkHash(h); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.Path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Has reports whether blob h is present.
func (s *Store) Has(h v1.Hash) bool {
	_, err := s.Stat(h)
	return err == nil
}

// Open opens blob h for reading. *os.File is an io.ReaderAt and io.Seeker,
// which lets the registry serve ranges and tar readers skip file bodies.
func (s *Store) Open(h v1.Hash) (*os.File, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	return f, err
}

// ReadBlob reads a small blob (a config or manifest) whole.
func (s *Store) ReadBlob(h v1.Hash, limit int64) ([]byte, error) {
	f, err := s.Open(h)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // only read
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", h, limit)
	}
	return b, nil
}

// Writer writes one blob: bytes go to a scratch file while being hashed;
// Commit moves the file into place under its digest.
type Writer struct {
	s      *Store
	f      *os.File
	h      hash.Hash
	n      int64
	head   []byte
	closed bool
}

// NewWriter starts a blob.
func (s *Store) NewWriter() (*Writer, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "blob-")
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	return &Writer{s: s, f: f, h: sha256.New()}, nil
}

// headLen is how many leading bytes a Writer keeps to sniff compression.
const headLen = 8

func (w *Writer) Write(p []byte) (int, error) {
	if len(w.head) < headLen {
		w.head = append(w.head, p[:min(len(p), headLen-len(w.head))]...)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// ReadFrom copies r with a large buffer: the default 32 KiB costs
// measurably more syscalls on GiB-sized layers.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Digest is the digest of the bytes written so far.
func (w *Writer) Digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
}

// Committed describes a blob after Commit.
type Committed struct {
	Digest v1.Hash
	Size   int64
	// New is false when the store held the blob already (the bytes
	// written were thrown away).
	New bool
	// Head holds the blob's first bytes, to sniff its compression.
	Head []byte
}

// Commit checks the digest against want (when want is not zero) and moves
// the blob into place.
func (w *Writer) Commit(want v1.Hash) (Committed, error) {
	if w.closed {
		return Committed{}, errors.New("blob writer already closed")
	}
	w.closed = true
	got := w.Digest()
	c := Committed{Digest: got, Size: w.n, Head: w.head}
	if err := w.f.Close(); err != nil {
		removeTemp(w.f.Name())
		return c, err
	}
	if want != (v1.Hash{}) && want != got {
		removeTemp(w.f.Name())
		return c, fmt.Errorf("blob digest mismatch: expected %s, got %s", want, got)
	}
	if w.s.Has(got) {
		return c, os.Remove(w.f.Name())
	}
	if err := os.Rename(w.f.Name(), w.s.Path(got)); err != nil {
		removeTemp(w.f.Name())
		return c, fmt.Errorf("image cache: %w", err)
	}
	c.New = true
	return c, nil
}

// Abort throws the partial blob away. It is safe after Commit.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.f.Close() //nolint:errcheck // the partial blob is thrown away
	removeTemp(w.f.Name())
}

// removeTemp removes a temporary file that a failure or an abort left:
// what is reported is that failure, and a leftover temporary file holds
// nothing the cache reads.
func removeTemp(name string) {
	os.Remove(name) //nolint:errcheck // see above
}

// Put stores everything r yields and checks it against want (if not zero).
func (s *Store) Put(r io.Reader, want v1.Hash) (Committed, error) {
	w, err := s.NewWriter()
	if err != nil {
		return Committed{}, err
	}
	if _, err := w.ReadFrom(r); err != nil {
		w.Abort()
		return Committed{}, err
	}
	return w.Commit(want)
}

// PutBytes stores a small blob.
func (s *Store) PutBytes(b []byte) (Committed, error) {
	return s.Put(strings.NewReader(string(b)), v1.Hash{})
}

// Delete removes blob h and returns how many bytes it freed.
func (s *Store) Delete(h v1.Hash) (int64, error) {
	size, err := s.Stat(h)
	if err != nil {
		return 0, err
	}
	return size, os.Remove(s.Path(h))
}

// Walk calls fn for every blob in the store.
func (s *Store) Walk(fn func(h v1.Hash, size int64) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if checkHash(h) != nil || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if err := fn(h, fi.Size()); err != nil {
			return err
		}
	}
	return nil
}

// RemoveScratch removes scratch files older than age (left behind by an
// interrupted run) and returns the bytes freed.
func (s *Store) RemoveScratch(age time.Duration) (int64, error) {
	dir := filepath.Join(s.root, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < age {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err == nil {
			freed += fi.Size()
		}
	}
	return freed, nil
}

// TempDir makes a scratch directory inside the store (same filesystem as
// the blobs, so results can be renamed into place).
func (s *Store) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(filepath.Join(s.root, "tmp"), pattern)
}

func recordPath(root, kind, name string) (string, error) {
	if kind == "" || name == "" || strings.ContainsAny(kind+name, `/\`) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("bad record name %q/%q", kind, name)
	}
	return filepath.Join(root, kind, name+".json"), nil
}

// ReadRecord loads the JSON record kind/name into v. It returns ErrNotFound
// when there is none.
func (s *Store) ReadRecord(kind, name string, v any) error {
	p, err := recordPath(s.root, kind, name)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("record %s/%s: %w", kind, name, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("image cache record %s is damaged (remove it or run docker bottle prune): %w", p, err)
	}
	return nil
}

// WriteRecord saves v as the JSON record kind/name, atomically.
func (s *Store) WriteRecord(kind, name string, v any) error {
	p, err := recordPath(s.root, kind, name)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp-" + randomHex(6)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		removeTemp(tmp)
		return err
	}
	return nil
}

// DeleteRecord removes the record kind/name, if present.
func (s *Store) DeleteRecord(kind, name string) error {
	p, err := recordPath(s.root, kind, name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Records lists the names of the records of one kind.
func (s *Store) Records(kind string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, kind))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && e.Type().IsRegular() {
			names = append(names, n)
		}
	}
	return names, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var digestRef = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// PruneRecords removes every record that names a blob the store no longer
// holds (records only point at blobs; they are cheap to make again) and
// returns the bytes freed.
func (s *Store) PruneRecords() (int64, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, kind := range entries {
		if !kind.IsDir() || kind.Name() == "blobs" || kind.Name() == "tmp" {
			continue
		}
		names, err := s.Records(kind.Name())
		if err != nil {
			return freed, err
		}
		for _, n := range names {
			p := filepath.Join(s.root, kind.Name(), n+".json")
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			for _, d := range digestRef.FindAll(b, -1) {
				if h, err := v1.NewHash(string(d)); err == nil && !s.Has(h) {
					freed += int64(len(b))
					if err := os.Remove(p); err != nil {
						return freed, err
					}
					break
				}
			}
		}
	}
	return freed, nil
}

// ContextReader reads r until ctx ends: a long copy into or out of the
// store stops when its run is cancelled.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx: ctx, r: r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
