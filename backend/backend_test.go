package backend_test

import (
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/backend/docker"
	"github.com/docker-bottle/docker-bottle/backend/smolvm"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// TestForPicksThePlansBackend: the plan's backend name alone picks the
// implementation, and a name no backend registered is refused with the
// names that are known.
func TestForPicksThePlansBackend(t *testing.T) {
	b, err := backend.For(plan.Plan{Backend: spec.BackendDocker, Docker: &plan.DockerPlan{Container: "c"}}, backend.Deps{})
	if _, ok := b.(docker.Docker); err != nil || !ok {
		t.Errorf("docker plan: %T %v", b, err)
	}
	b, err = backend.For(plan.Plan{Backend: spec.BackendSmolvm, Smolvm: &plan.SmolvmPlan{MachineName: "m"}}, backend.Deps{})
	if _, ok := b.(smolvm.Smolvm); err != nil || !ok {
		t.Errorf("smolvm plan: %T %v", b, err)
	}
	if _, err := backend.For(plan.Plan{Slug: "x", Backend: "firecracker"}, backend.Deps{}); err == nil ||
		!strings.Contains(err.Error(), `"firecracker"`) || !strings.Contains(err.Error(), "[docker smolvm]") {
		t.Errorf("unknown backend: %v", err)
	}
}
