// Command fakesmolvm is a stand-in for smol-machines' smolvm, for tests on
// machines that cannot run microVMs. It follows ../../shared/smolvm-cli.md
// (v1.9.3): same commands, flags and short forms, same output lines on the
// same streams, same JSON fields, exit codes 0/1/2 and refusals.
//
// Where it differs, by necessity: there is no VM. `pack create` really
// pulls the image (go-containerregistry, with smolvm's SMOLVM_CONFIG
// credentials and crane's plain-HTTP rule) and writes the merged root
// filesystem into the .smolmachine; `machine start` extracts it and runs the
// workload as a host process chrooted into it; `machine exec` runs commands
// the same way. A guest's sockets are host sockets (as with smolvm's TSI);
// the egress allowlist is recorded, not enforced. State lives in
// $SMOLVM_FAKE_STATE; see package fakestate.
//
// Build it as `smolvm` (make fake-smolvm) and put it first on PATH, or
// point DOCKER_BOTTLE_SMOLVM at it.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

const topUsage = "<COMMAND>"

const topHelp = `Build and run portable, self-contained virtual machines

Usage: smolvm <COMMAND>

Commands:
  machine  Manage machines (create, start, stop, exec) [aliases: vm]
  serve    Start the HTTP API server for programmatic control
  pack     Package and run self-contained VM executables
  config   Manage smolvm configuration (registries, defaults)
  help     Print this message or the help of the given subcommand(s)

Options:
  -h, --help     Print help
  -V, --version  Print version

Agents: run ` + "`smolvm --help`" + ` for full documentation including CLI reference and Smolfile schema
`

func main() {
	args := os.Args[1:]
	top := &cmdSpec{usage: topUsage}
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, topHelp)
		os.Exit(2)
	}
	switch args[0] {
	case "-V", "--version":
		fmt.Printf("smolvm %s\n", version())
		return
	case "-h", "--help", "help":
		fmt.Print(topHelp)
		return
	case "machine", "vm":
		machineMain(args[1:])
	case "pack":
		if len(args) < 2 || args[1] != "create" {
			sub := "<COMMAND>"
			if len(args) >= 2 {
				sub = args[1]
			}
			usageError(&cmdSpec{usage: "pack <COMMAND>"}, "unrecognized subcommand '%s'", sub)
		}
		packCreate(args[2:])
	case vmProcessCommand:
		vmProcessMain(args[1:])
	default:
		usageError(top, "unrecognized subcommand '%s'", args[0])
	}
}

func version() string {
	if v := os.Getenv(fakestate.EnvVersion); v != "" {
		return v
	}
	return fakestate.DefaultVersion
}

// fail prints smolvm's failure line and exits 1.
func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "Error: %s\n", fmt.Sprintf(format, a...))
	os.Exit(1)
}

// checkKVM simulates the host's /dev/kvm for commands that boot a VM.
// `pack create` prints smolvm's KVM errors as they are; `machine start` and
// `machine run` wrap them (CONTRACT.md, section 6). "noboot" is a host
// whose hypervisor opens but cannot boot the guest kernel, with the error
// smolvm 1.32.2 printed on such a host (a paravirtualised nested KVM).
func checkKVM(wrap string) {
	prefix := ""
	if wrap != "" {
		prefix = "agent operation failed: " + wrap + ": "
	}
	switch os.Getenv(fakestate.EnvKVM) {
	case "missing":
		fail("%skvm not available: KVM not available. Ensure KVM kernel module is loaded.", prefix)
	case "denied":
		fail("%skvm permission denied: Cannot access /dev/kvm (permission denied).", prefix)
	case "noboot":
		if wrap == "" {
			wrap = "start agent"
		}
		fail("agent operation failed: %s: agent operation failed: monitor agent: [%s ERROR krun_vmm::linux::vstate] "+
			"Received KVM_EXIT_INTERNAL_ERROR signal (boot process exited (code 1) before the agent was ready)",
			wrap, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"))
	}
}

func stateDir() string { return fakestate.Dir(os.Getenv) }
