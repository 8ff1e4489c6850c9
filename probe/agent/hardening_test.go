package agent

import (
	"os"
	"runtime"
	"testing"

	"github.com/docker-bottle/docker-bottle/probe"
)

func TestParseStatus(t *testing.T) {
	const confined = "Name:\tprobe\nUmask:\t0022\nUid:\t0\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n" +
		"CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"
	st, err := parseStatus([]byte(confined))
	if err != nil || st.uid != 1000 || st.capEff != "0000000000000000" || !st.noNewPrivs {
		t.Errorf("%+v, %v", st, err)
	}
	for _, bad := range []string{
		"", "Uid:\t1000\n", "Uid:\tx x x x\nCapEff:\t0\nNoNewPrivs:\t1\n", "Uid:\t1 1 1 1\nCapEff:\tzz\nNoNewPrivs:\t1\n",
		"Uid:\t1 1 1 1\nCapEff:\t0\nNoNewPrivs:\t2\n", "Uid:\t1 -1 1 1\nCapEff:\t0\nNoNewPrivs:\t1\n",
	} {
		if st, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("%q parsed: %+v", bad, st)
		}
	}
}

func TestHardeningChecksOfThisProcess(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o500); err != nil {
		t.Fatal(err)
	}
	cs := hardeningChecks(procStatus, root)
	if len(cs) != 4 {
		t.Fatalf("%+v", cs)
	}
	if runtime.GOOS == "linux" {
		if c := cs[0]; c.Kind != probe.KindNonRoot || c.Outcome != probe.OutcomeOK || *c.Evidence.UID != os.Geteuid() {
			t.Errorf("%+v", c)
		}
	}
	// Root may write in a mode-500 directory: then the write goes through.
	if c := cs[3]; c.Kind != probe.KindReadOnlyRoot || (c.Outcome == probe.OutcomeOK) != (os.Geteuid() == 0) || c.Evidence.ReadOnly {
		t.Errorf("%+v", c)
	}
}
