package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker-bottle/docker-bottle/probe"
)

// procStatus is where the kernel tells a process its own credentials.
const procStatus = "/proc/self/status"

// hardeningChecks report the probe's own confinement, as the agent would
// have it: its uid, effective capabilities and no_new_privs (read from
// statusFile, /proc/self/status), and whether a file can be made in root
// (the root filesystem, "/").
func hardeningChecks(statusFile, root string) []probe.Check {
	user := probe.Check{Kind: probe.KindNonRoot, Tried: "read Uid from " + statusFile}
	caps := probe.Check{Kind: probe.KindNoCapabilities, Tried: "read CapEff from " + statusFile}
	nnp := probe.Check{Kind: probe.KindNoNewPrivs, Tried: "read NoNewPrivs from " + statusFile}
	st, err := readStatus(statusFile)
	if err != nil {
		for _, c := range []*probe.Check{&user, &caps, &nnp} {
			c.Outcome, c.Result = probe.OutcomeError, err.Error()
		}
	} else {
		uid := st.uid
		user.Outcome, user.Result, user.Evidence.UID = probe.OutcomeOK, fmt.Sprintf("uid %d", uid), &uid
		caps.Outcome, caps.Result, caps.Evidence.UID, caps.Evidence.CapEff = probe.OutcomeOK, "CapEff "+st.capEff, &uid, st.capEff
		on := st.noNewPrivs
		nnp.Outcome, nnp.Result, nnp.Evidence.NoNewPrivs = probe.OutcomeOK, fmt.Sprintf("NoNewPrivs %t", on), &on
	}
	return []probe.Check{user, caps, nnp, writeRoot(root)}
}

// status is what hardeningChecks read of /proc/self/status.
type status struct {
	uid        int
	capEff     string // hexadecimal, as the kernel writes it
	noNewPrivs bool
}

// readStatus parses the Uid (the effective one), CapEff and NoNewPrivs
// lines of a /proc/PID/status file; all three must be there.
func readStatus(path string) (status, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return status{}, fmt.Errorf("reading the probe's own status: %w", err)
	}
	return parseStatus(data)
}

func parseStatus(data []byte) (status, error) {
	var st status
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		switch name {
		case "Uid":
			// real, effective, saved, filesystem
			if len(fields) < 2 {
				return status{}, fmt.Errorf("status: bad Uid line %q", value)
			}
			uid, err := strconv.Atoi(fields[1])
			if err != nil || uid < 0 {
				return status{}, fmt.Errorf("status: bad Uid line %q", value)
			}
			st.uid = uid
			seen |= 1
		case "CapEff":
			if _, err := strconv.ParseUint(fields[0], 16, 64); err != nil {
				return status{}, fmt.Errorf("status: bad CapEff %q", fields[0])
			}
			st.capEff = fields[0]
			seen |= 2
		case "NoNewPrivs":
			switch fields[0] {
			case "0", "1":
				st.noNewPrivs = fields[0] == "1"
			default:
				return status{}, fmt.Errorf("status: bad NoNewPrivs %q", fields[0])
			}
			seen |= 4
		}
	}
	if err := sc.Err(); err != nil {
		return status{}, fmt.Errorf("status: %w", err)
	}
	if seen != 7 {
		return status{}, errors.New("status: no Uid, CapEff or NoNewPrivs line (not Linux, or a kernel older than 4.10)")
	}
	return st, nil
}

// writeRoot tries to make a file in root, and removes it if it could.
func writeRoot(root string) probe.Check {
	c := probe.Check{Kind: probe.KindReadOnlyRoot, Target: root, Tried: "create a file in " + root}
	f, err := os.CreateTemp(root, ".bottle-probe-*")
	if err != nil {
		c.Outcome, c.Result, c.Evidence.Error = probe.OutcomeFailed, "the write failed", err.Error()
		c.Evidence.ReadOnly = errors.Is(err, syscall.EROFS)
		return c
	}
	name := f.Name()
	_ = f.Close()            // empty, nothing to flush
	rmErr := os.Remove(name) // the probe leaves nothing behind where it can
	c.Outcome, c.Result = probe.OutcomeOK, "created "+name
	if rmErr != nil {
		c.Result += " (and could not remove it: " + rmErr.Error() + ")"
	}
	return c
}
