package agentconf

import (
	"archive/tar"
	"bytes"
	"fmt"
)

// Tar is the snapshot as the bottle receives it: a tar of its files, paths
// relative to the agent's home, owned by nobody in particular (the
// workspace bootstrap writes them as the agent's user), with no time
// stamps, so that the same configuration gives the same bytes. Nil when
// there is nothing to carry.
func (s *Snapshot) Tar() ([]byte, error) {
	if len(s.Files) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range s.Files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: int64(f.Mode.Perm()), Size: int64(len(f.Content)), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("packing %s: %w", f.Source, err)
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, fmt.Errorf("packing %s: %w", f.Source, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
