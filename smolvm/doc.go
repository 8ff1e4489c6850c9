// Package smolvm drives the smolvm command-line tool as a typed Go API,
// following CONTRACT.md (the contract, with the facts observed on the real
// binary), which its test fake
// (smolvm/fakesmolvm) follows too.
//
// Find the binary with Lookup, wrap it with New, check it with Version and
// Version.Check (refused below MinVersion, warned below RecommendedVersion;
// CelestoAI's unrelated Python "SmolVM" is recognised), then:
//
//	PackCreate      registry image -> .smolmachine artifact
//	MachineCreate   record a machine (--from the artifact, allowlist, labels, workload)
//	MachineStart, MachineStop, MachineDelete (always -f)
//	MachineStatus, MachineList (--json), MachineDataDir
//	MachineExec     run a command; returns the guest's exit code as such
//
// Every call takes a context: cancelling it sends smolvm SIGINT (the one
// signal it handles), then SIGKILL after the grace period, and the call
// returns the context's error. smolvm sees only the SMOLVM_* variables of
// the environment that cannot change a machine's network or isolation.
// Names are checked with ValidateName before smolvm runs. A failed smolvm
// run is a *CommandError that keeps smolvm's `Error: ...` line verbatim
// after what the plugin was doing, and matches (errors.Is) one of the
// sentinels in errors.go when the failure is one the plugin acts on.
//
// Guest environment variables are EnvVar values: smolvm stores `create -e`
// in plain text and any -e shows in the process list, so PlainEnv refuses
// secret-looking names (ErrSecretEnv) unless NotSecretEnv says otherwise.
package smolvm
