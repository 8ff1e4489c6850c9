package stage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// TestPrepareWritesTheUserConfig: the snapshot of the user's agent
// settings goes into the guest dir, readable by the agent's user, and the
// guest env points the bootstrap at it; without one, no file.
func TestPrepareWritesTheUserConfig(t *testing.T) {
	o := options(t, "docker", plan.NetworkInternal)
	o.UserConfig = []byte("a tar")
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(p.StageDir, UserConfig)
	if b, err := os.ReadFile(f); err != nil || string(b) != "a tar" || mode(t, f) != 0o644 {
		t.Errorf("user config in the stage: %q %v", b, err)
	}
	if filepath.Join(p.StageDir, GuestDir, filepath.Base(plan.GuestUserConfig)) != f {
		t.Errorf("%s is not where the guest dir is mounted", f)
	}
	if !slices.Contains(p.Docker.GuestEnv, guest.EnvUserConfig+"="+plan.GuestUserConfig) {
		t.Errorf("guest env %q", p.Docker.GuestEnv)
	}

	o = options(t, "docker", plan.NetworkInternal)
	p, err = Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.StageDir, UserConfig)); !os.IsNotExist(err) {
		t.Errorf("a user config without one: %v", err)
	}
}
