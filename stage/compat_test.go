package stage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The plans in testdata were saved by the code before package stage
// existed (plan.Prepare and Plan.Save), with their state dir renamed
// to /home/user/.docker/bottle.
const goldenState = "/home/user/.docker/bottle"

// TestExistingPlansLoadAndSaveAlike: the stage dirs of existing bottles
// still load, and saving a loaded plan writes the same bytes.
func TestExistingPlansLoadAndSaveAlike(t *testing.T) {
	for _, name := range []string{"plan-docker.json", "plan-smolvm.json"} {
		golden, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		dir := At(t.TempDir())
		if err := os.WriteFile(dir.File(PlanFile), golden, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := dir.Load()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Slug != "my-repo" || p.StageDir != goldenState+"/bottles/my-repo" || !p.Bundle.IP.IsValid() {
			t.Errorf("%s loaded as %+v", name, p)
		}
		again := At(t.TempDir())
		if err := again.Save(p); err != nil {
			t.Fatal(err)
		}
		if saved, _ := os.ReadFile(again.File(PlanFile)); !bytes.Equal(saved, golden) {
			t.Errorf("%s saved again differs:\n%s", name, saved)
		}
	}
}

// TestPrepareWritesThePlanAsBefore: a plan prepared now is, byte for
// byte, the one the code before package stage wrote for the same inputs,
// but for where the operator token is: next to the stage dir, no longer
// in it (the bundle mounts the stage dir).
func TestPrepareWritesThePlanAsBefore(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "plan-docker.json"))
	if err != nil {
		t.Fatal(err)
	}
	o := options(t, "docker", "internal")
	o.Now = func() time.Time { return time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC) }
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(Of(p).File(PlanFile))
	if err != nil {
		t.Fatal(err)
	}
	saved = bytes.ReplaceAll(saved, []byte(o.Dirs.State), []byte(goldenState))
	saved = bytes.Replace(saved, []byte(`"/home/user/.docker/bottle/bottles/.my-repo.operator-token"`),
		[]byte(`"/home/user/.docker/bottle/bottles/my-repo/operator.token"`), 1)
	if !bytes.Equal(saved, golden) {
		t.Errorf("plan.json differs from before:\n%s", saved)
	}
}
