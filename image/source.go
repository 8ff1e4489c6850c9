package image

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// ImageInspector finds an image in the engine.
type ImageInspector interface { //nolint:revive // plugin/ uses the name, and is being rewritten now: rename it there
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
}

// CheckImage refuses an agent image (`agent.image`) the engine does not
// have or cannot name: it is used as it is, never pulled. A run checks it
// before it makes anything, the pipeline again when it uses it.
func CheckImage(ctx context.Context, eng ImageInspector, ref string) error {
	if _, err := eng.ImageInspect(ctx, ref); err != nil {
		if isNotFound(err) {
			return fmt.Errorf("agent image %s is not in the engine; pull it first (`docker pull %s`) or give a Dockerfile", ref, ref)
		}
		return fmt.Errorf("agent image %s: %w", ref, err)
	}
	return nil
}
