package store

import (
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// V1Image is img as a go-containerregistry image whose blobs are read from
// the store as they are needed.
func (s *Store) V1Image(img Image) (v1.Image, error) {
	manifest, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&v1Core{st: s, img: img, manifest: manifest})
}

// v1Core is a v1.Image core over blobs in the store.
type v1Core struct {
	st       *Store
	img      Image
	manifest []byte
}

func (c *v1Core) RawConfigFile() ([]byte, error)      { return c.img.Config, nil }
func (c *v1Core) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (c *v1Core) RawManifest() ([]byte, error)        { return c.manifest, nil }

func (c *v1Core) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == c.img.ConfigDigest() {
		return &v1Blob{st: c.st, l: Layer{MediaType: types.OCIConfigJSON, Digest: h, Size: int64(len(c.img.Config))}}, nil
	}
	for _, l := range c.img.Layers {
		if l.Digest == h {
			return &v1Blob{st: c.st, l: l}, nil
		}
	}
	return nil, fmt.Errorf("image has no blob %s", h)
}

type v1Blob struct {
	st *Store
	l  Layer
}

func (b *v1Blob) Digest() (v1.Hash, error)            { return b.l.Digest, nil }
func (b *v1Blob) Size() (int64, error)                { return b.l.Size, nil }
func (b *v1Blob) MediaType() (types.MediaType, error) { return b.l.MediaType, nil }
func (b *v1Blob) Compressed() (io.ReadCloser, error)  { return b.st.Open(b.l.Digest) }
