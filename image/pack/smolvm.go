package pack

import (
	"context"
	"strings"

	"github.com/docker-bottle/docker-bottle/smolvm"
)

// Smolvm is the Packer that runs the smolvm binary at a path.
type Smolvm struct {
	path string
	opts []smolvm.Option
}

// NewSmolvm returns a Packer over the smolvm binary at path; opts apply to
// every call (e.g. smolvm.WithEnv).
func NewSmolvm(path string, opts ...smolvm.Option) *Smolvm {
	return &Smolvm{path: path, opts: opts}
}

// Version is smolvm's version, X.Y.Z.
func (s *Smolvm) Version(ctx context.Context) (string, error) {
	v, err := smolvm.New(s.path, s.opts...).Version(ctx)
	if err != nil {
		return "", err
	}
	return v.String(), nil
}

// PackCreate runs `smolvm pack create` for req. SMOLVM_CONFIG in req.Env
// becomes the run's settings file; the other variables (the passwords its
// password_env entries name) go to smolvm's environment only.
func (s *Smolvm) PackCreate(ctx context.Context, req Request) error {
	if err := req.Validate(); err != nil {
		return err
	}
	o := smolvm.PackOptions{Image: req.Image, Output: req.Output, Platform: req.Platform, NoProxy: req.NoProxy}
	for _, kv := range req.Env {
		if path, ok := strings.CutPrefix(kv, "SMOLVM_CONFIG="); ok {
			o.Config = path
		} else {
			o.ConfigEnv = append(o.ConfigEnv, kv)
		}
	}
	opts := s.opts
	if req.Stderr != nil {
		opts = append(append([]smolvm.Option(nil), opts...), smolvm.WithProgress(req.Stderr))
	}
	_, err := smolvm.New(s.path, opts...).PackCreate(ctx, o)
	return err
}
