package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer describes one layer blob of an image.
type Layer struct {
	MediaType types.MediaType `json:"mediaType"`
	Digest    v1.Hash         `json:"digest"`
	Size      int64           `json:"size"`
	// DiffID is the digest of the uncompressed tar; equal to Digest for
	// uncompressed layers.
	DiffID v1.Hash `json:"diffID"`
}

// Image is an image whose blobs are in the store: its raw config and its
// layers, bottom first. It is written as an OCI manifest; layers exported
// from the engine stay uncompressed (valid OCI, and what smolvm's and
// crane's pulls accept), so crossing loopback costs no compression.
type Image struct {
	Config []byte  `json:"config"`
	Layers []Layer `json:"layers"`
}

// ConfigDigest is the digest of the raw config.
func (i Image) ConfigDigest() v1.Hash { return digestOf(i.Config) }

// ConfigFile parses the config.
func (i Image) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.Config))
}

// Manifest returns the OCI image manifest.
func (i Image) Manifest() ([]byte, error) {
	if len(i.Config) == 0 {
		return nil, errors.New("image has no config")
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: v1.Descriptor{
			MediaType: types.OCIConfigJSON,
			Size:      int64(len(i.Config)),
			Digest:    i.ConfigDigest(),
		},
		Layers: make([]v1.Descriptor, 0, len(i.Layers)),
	}
	for _, l := range i.Layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.MediaType, Size: l.Size, Digest: l.Digest})
	}
	return json.Marshal(m)
}

// Blobs lists every blob the image needs: config first, then layers.
func (i Image) Blobs() []v1.Hash {
	hs := []v1.Hash{i.ConfigDigest()}
	for _, l := range i.Layers {
		hs = append(hs, l.Digest)
	}
	return hs
}

// Missing returns the blobs of the image the store does not hold; the config
// is checked by digest too, as it is stored as a blob for the registry.
func (s *Store) Missing(i Image) []v1.Hash {
	var miss []v1.Hash
	for _, h := range i.Blobs() {
		if !s.Has(h) {
			miss = append(miss, h)
		}
	}
	return miss
}

// Append returns the image with layer l added on top and a history entry
// for it. The config is edited as generic JSON so that fields this code
// does not know survive; the result is deterministic for the same inputs.
func (i Image) Append(l Layer, history v1.History) (Image, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(i.Config, &cfg); err != nil {
		return Image{}, fmt.Errorf("image config: %w", err)
	}
	var rootfs struct {
		Type    string    `json:"type"`
		DiffIDs []v1.Hash `json:"diff_ids"`
	}
	if raw, ok := cfg["rootfs"]; ok {
		if err := json.Unmarshal(raw, &rootfs); err != nil {
			return Image{}, fmt.Errorf("image config rootfs: %w", err)
		}
	}
	if rootfs.Type == "" {
		rootfs.Type = "layers"
	}
	if len(rootfs.DiffIDs) != len(i.Layers) {
		return Image{}, fmt.Errorf("image config lists %d layers, the manifest %d", len(rootfs.DiffIDs), len(i.Layers))
	}
	rootfs.DiffIDs = append(rootfs.DiffIDs, l.DiffID)
	var hist []json.RawMessage
	if raw, ok := cfg["history"]; ok {
		if err := json.Unmarshal(raw, &hist); err != nil {
			return Image{}, fmt.Errorf("image config history: %w", err)
		}
	}
	h, err := json.Marshal(history)
	if err != nil {
		return Image{}, err
	}
	hist = append(hist, h)
	if cfg["rootfs"], err = json.Marshal(rootfs); err != nil {
		return Image{}, err
	}
	if cfg["history"], err = json.Marshal(hist); err != nil {
		return Image{}, err
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return Image{}, err
	}
	layers := append(append([]Layer(nil), i.Layers...), l)
	return Image{Config: out, Layers: layers}, nil
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// Media types of layers, by compression.
const (
	MediaTypeLayer     = types.OCIUncompressedLayer
	MediaTypeLayerGzip = types.OCILayer
	MediaTypeLayerZstd = types.OCILayerZStd
)

// SniffLayer returns the OCI media type for a layer blob from its first
// bytes (gzip and zstd magic numbers; anything else is a plain tar).
func SniffLayer(head []byte) types.MediaType {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return MediaTypeLayerGzip
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return MediaTypeLayerZstd
	}
	return MediaTypeLayer
}
