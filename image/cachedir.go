package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
)

// EngineCacheDir is the part of the cache dir for the engine whose ID
// (docker info's ID) is engineID: New keeps there the blobs and records of
// the images that engine built and exported, and the artifacts packed from
// them. Each engine has its own, so what one context's engine made never
// stands in for another's (an engine that reported another's image ID
// would otherwise reuse, or poison, that engine's cached layers). The
// ID is hashed: it is the engine's word, not a safe path.
func EngineCacheDir(cacheDir, engineID string) (string, error) {
	if engineID == "" {
		return "", errors.New("the engine reported no ID, which keys its image cache: is it a Docker engine?")
	}
	sum := sha256.Sum256([]byte(engineID))
	return filepath.Join(cacheDir, "engines", hex.EncodeToString(sum[:])[:16]), nil
}
