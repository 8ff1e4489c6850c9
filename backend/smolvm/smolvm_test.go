package smolvm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/backend/smolvm"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/plan"
)

// TestWithoutSmolvmEveryOperationSaysSo: a bottle made with smolvm on a
// host that no longer has it can still be listed and removed from the
// engine's side; every operation on its machine says smolvm is missing.
func TestWithoutSmolvmEveryOperationSaysSo(t *testing.T) {
	ctx := context.Background()
	s := smolvm.Smolvm{}
	p := plan.Plan{Slug: "b", Smolvm: &plan.SmolvmPlan{MachineName: "bottle-b"}}
	if st := s.Status(ctx, p); st != "unknown (smolvm not found)" {
		t.Errorf("status: %q", st)
	}
	for what, err := range map[string]error{
		"stop":   s.Stop(ctx, p),
		"start":  s.Start(ctx, p),
		"remove": s.Remove(ctx, p),
	} {
		if err == nil || !strings.Contains(err.Error(), "smolvm is not installed") {
			t.Errorf("%s: %v", what, err)
		}
	}
	if _, err := s.Exec(ctx, p, backend.ExecOptions{Command: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "not installed here") {
		t.Errorf("exec: %v", err)
	}
	if _, err := s.Attach(ctx, p, backend.AttachOptions{}); err == nil || !strings.Contains(err.Error(), "not installed here") {
		t.Errorf("attach: %v", err)
	}
	if _, err := s.Logs(ctx, p, backend.LogsOptions{Tail: "all"}); err == nil || !strings.Contains(err.Error(), "not installed here") {
		t.Errorf("logs: %v", err)
	}
	// A run stops before building anything.
	if _, err := s.Image(ctx, nil, image.Request{}, "amd64"); err == nil || err.Error() != "launching the agent failed: smolvm is not installed" {
		t.Errorf("image: %v", err)
	}
}
