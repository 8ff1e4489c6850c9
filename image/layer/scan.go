package layer

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/docker-bottle/docker-bottle/image/store"
)

// entry is a path of the image's merged filesystem and the layer it comes
// from.
type entry struct {
	hdr   tar.Header
	layer int
}

// mergedFS holds the visible entries of the interesting paths.
type mergedFS struct {
	entries map[string]entry
}

// scan reads the layers from the top down, applying whiteouts as the OCI
// layer spec says, and keeps the visible entries for which keep is true.
// Layer bodies are skipped, not read: tar's reader seeks over them in the
// uncompressed layers the engine exports.
func scan(st *store.Store, img store.Image, keep func(string) bool) (*mergedFS, error) {
	fsys := &mergedFS{entries: map[string]entry{}}
	removed := map[string]bool{} // whiteouts from upper layers
	opaque := map[string]bool{}  // opaque dirs from upper layers
	hidden := func(p string) bool {
		for a := p; a != "."; a = path.Dir(a) {
			if removed[a] {
				return true
			}
			if a != p {
				if opaque[a] {
					return true
				}
				if e, ok := fsys.entries[a]; ok && e.hdr.Typeflag != tar.TypeDir {
					return true
				}
			}
		}
		return false
	}
	for i := len(img.Layers) - 1; i >= 0; i-- {
		var wh, opq []string
		err := walkLayer(st, img.Layers[i], func(p string, h *tar.Header, _ io.Reader) (bool, error) {
			dir, base := path.Dir(p), path.Base(p)
			if base == ".wh..wh..opq" {
				opq = append(opq, dir)
				return false, nil
			}
			if name, ok := strings.CutPrefix(base, ".wh."); ok {
				wh = append(wh, path.Join(dir, name))
				return false, nil
			}
			if !keep(p) {
				return false, nil
			}
			if _, ok := fsys.entries[p]; ok || hidden(p) {
				return false, nil
			}
			fsys.entries[p] = entry{hdr: *h, layer: i}
			return false, nil
		})
		if err != nil {
			return nil, err
		}
		for _, p := range wh {
			removed[p] = true
		}
		for _, p := range opq {
			opaque[p] = true
		}
	}
	return fsys, nil
}

// resolve follows symlinks through the merged filesystem and returns the
// real path of p and its entry.
func (m *mergedFS) resolve(p string) (string, entry, bool) {
	rest := strings.Split(p, "/")
	cur := ""
	for hops := 0; len(rest) > 0; {
		next := path.Join(cur, rest[0])
		rest = rest[1:]
		e, ok := m.entries[next]
		if !ok {
			return "", entry{}, false
		}
		if e.hdr.Typeflag == tar.TypeSymlink {
			if hops++; hops > 40 {
				return "", entry{}, false
			}
			target := e.hdr.Linkname
			if path.IsAbs(target) {
				target = path.Clean(strings.TrimPrefix(target, "/"))
			} else {
				target = path.Join(path.Dir(next), target)
			}
			if target == "." || strings.HasPrefix(target, "..") {
				return "", entry{}, false
			}
			rest = append(strings.Split(target, "/"), rest...)
			cur = ""
			continue
		}
		cur = next
		if len(rest) == 0 {
			return cur, e, true
		}
	}
	return "", entry{}, false
}

// readEntry returns the content of the regular file p of one layer.
func readEntry(st *store.Store, l store.Layer, p string) ([]byte, error) {
	var content []byte
	found := false
	err := walkLayer(st, l, func(q string, h *tar.Header, r io.Reader) (bool, error) {
		if q != p || h.Typeflag != tar.TypeReg {
			return false, nil
		}
		if h.Size > maxFile {
			return true, fmt.Errorf("larger than %d bytes", maxFile)
		}
		b, err := io.ReadAll(r)
		content, found = b, true
		return true, err
	})
	if err == nil && !found {
		err = errors.New("not found in its layer")
	}
	return content, err
}

// walkLayer calls fn for each entry of layer l with its cleaned relative
// path, until fn returns true or an error.
func walkLayer(st *store.Store, l store.Layer, fn func(string, *tar.Header, io.Reader) (bool, error)) error {
	f, err := st.Open(l.Digest)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // only read
	var r io.Reader = f
	switch l.MediaType {
	case store.MediaTypeLayer, "application/vnd.docker.image.rootfs.diff.tar":
	case store.MediaTypeLayerGzip, "application/vnd.docker.image.rootfs.diff.tar.gzip":
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		defer zr.Close() //nolint:errcheck // only read; its errors come from Read
		r = zr
	case store.MediaTypeLayerZstd:
		zr, err := zstd.NewReader(f)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		defer zr.Close()
		r = zr
	default:
		return fmt.Errorf("layer %s has media type %s, which the bottle layer cannot read", l.Digest, l.MediaType)
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if p == "." || p == ".." || strings.HasPrefix(p, "../") {
			continue
		}
		stop, err := fn(p, h, tr)
		if err != nil || stop {
			return err
		}
	}
}
