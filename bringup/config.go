package bringup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle"
	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/proxy"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// Where host files appear in the bundle container.
const (
	caMount    = "/ca"
	rootsMount = "/roots/ca-certificates.pem"
	extraMount = "/roots/extra-ca.pem"
	// secretsDir is where a bottle made before the secrets went to the
	// bundle's memory keeps their values in its stage dir.
	secretsDir = "secrets"
)

// SystemRoots are the usual places of a host's CA bundle; the first that
// exists is mounted into the bundle so intercepted upstreams are checked
// against the host's own roots (the bundle image has none).
var SystemRoots = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
	"/etc/ssl/ca-bundle.pem",             // openSUSE
	"/etc/ssl/cert.pem",                  // macOS, BSDs
}

// ConfigOptions are the host-side inputs of the bundle configuration.
type ConfigOptions struct {
	// CADir holds the user's bottle CA (pki.LoadOrCreateCA).
	CADir string
	// RootsFile is the host's CA bundle; empty means the first of
	// SystemRoots that exists (or the roots embedded in the bundle).
	RootsFile string
	// ExtraCAFile is trusted in addition (corporate intercepting proxies).
	ExtraCAFile string
	// Getenv reads the host's environment for secrets; nil means os.Getenv.
	Getenv func(string) string
}

// ErrSecretMissing means a required secret has no value on the host.
var ErrSecretMissing = errors.New("a secret of the bottle has no value on the host")

// WriteConfig writes the bundle's configuration into the stage dir and
// returns the read-only mounts the bundle container needs besides the
// stage dir: the CA's certificate and the host's CA roots. No secret is
// written anywhere: the secrets' values, the CA key and the operator token
// go to the bundle's tmpfs after it started (SendSecrets). With the stage
// on the engine the mounts are files to copy into the stage volume.
func WriteConfig(p plan.Plan, o ConfigOptions) ([]Mount, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	in := func(name string) string { return StageMount + "/" + name }
	agentToken := in(stage.AgentToken)
	// The CA key and the operator token go with the secrets, to the
	// bundle's tmpfs (SendSecrets): only the certificate is mounted.
	caKey, operatorToken := SecretsMount+"/"+caKeyFile, SecretsMount+"/"+operatorTokenFile
	// On the engine, host files become files of the stage volume (the root
	// is read-only, and docker cp refuses it).
	// What the bundle writes goes to a dir of its own: on the engine, the
	// volume's root is root's; here, the stage dir is mounted read-only
	// (stageMounts), the audit dir and the gate's repository writable.
	ca, rootsAt, extraAt := caMount, rootsMount, extraMount
	written := func(name string) string { return in(auditDir + "/" + name) }
	if p.Bundle.StageOnEngine {
		ca, rootsAt, extraAt = in(caMount[1:]), in(rootsMount[1:]), in(extraMount[1:])
	} else {
		// The mount points of stageMounts, made here: nothing can be made
		// in a read-only mount.
		for _, d := range []string{auditDir, stage.GateRepo + "/hooks"} {
			if err := stage.Ensure(stage.Of(p).File(d)); err != nil {
				return nil, fmt.Errorf("preparing the stage dir for the bundle: %w", err)
			}
		}
	}
	mounts := []Mount{{Source: filepath.Join(o.CADir, pki.CertFile), Target: ca + "/" + pki.CertFile}}

	pc := proxy.Config{
		Listen:     ":" + strconv.Itoa(plan.ProxyPort),
		Bottle:     p.Slug,
		TokenFile:  agentToken,
		CACertFile: ca + "/" + pki.CertFile,
		CAKeyFile:  caKey,
		AuditFile:  written("audit-proxy.jsonl"),
		Approvals:  hasApproval(p, spec.ApproveEgress),
	}
	roots := o.RootsFile
	if roots == "" {
		for _, r := range SystemRoots {
			if st, err := os.Stat(r); err == nil && st.Mode().IsRegular() {
				roots = r
				break
			}
		}
	}
	if roots != "" {
		resolved, err := filepath.EvalSymlinks(roots)
		if err != nil {
			return nil, fmt.Errorf("host CA bundle %s: %w", roots, err)
		}
		mounts = append(mounts, Mount{Source: resolved, Target: rootsAt})
		pc.RootsFile = rootsAt
	}
	if o.ExtraCAFile != "" {
		mounts = append(mounts, Mount{Source: o.ExtraCAFile, Target: extraAt})
		pc.ExtraCAFile = extraAt
	}
	for _, r := range p.Egress.Allow {
		pc.Rules = append(pc.Rules, proxy.Rule{Host: r.Host, Ports: r.Ports, Private: r.Private, Methods: r.Methods, Paths: r.Paths, WebSocket: r.WebSocket})
	}
	for _, r := range p.Egress.Deny {
		pc.Rules = append(pc.Rules, proxy.Rule{Host: r.Host, Ports: r.Ports, Deny: true})
	}

	files, err := secretFiles(p, getenv)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		s := f.secret
		pc.Secrets = append(pc.Secrets, proxy.Secret{Host: s.Host, Header: s.Header, Format: s.Format,
			Placeholder: s.Placeholder, ValueFile: SecretsMount + "/" + f.name})
	}

	// A held request must outlive the supervisor's own timeout, or the
	// daemon would give up first.
	timeout := p.Supervise.Timeout
	daemonWait := timeout + 10*time.Second
	pc.ApprovalTimeout = proxy.Duration(daemonWait)

	gc := gate.Config{
		Listen:    ":" + strconv.Itoa(plan.GatePort),
		Bottle:    p.Slug,
		Repo:      in(stage.GateRepo),
		TokenFile: agentToken,
		Push: gate.PushRules{Refs: p.GitGate.Push, AllowForce: p.GitGate.AllowForce,
			AllowDelete: p.GitGate.AllowDelete, AllowTags: p.GitGate.AllowTags},
		ProtectedPaths: p.GitGate.ProtectedPaths,
		Start:          gate.Start{Commit: p.GitGate.StartCommit, Ref: p.GitGate.StartRef},
		AuditFile:      written("audit-gate.jsonl"),
		Approvals:      gate.Approvals{Enabled: hasApproval(p, spec.ApprovePush), Timeout: gate.Duration(daemonWait)},
	}
	if gc.ProtectedPaths == nil {
		gc.ProtectedPaths = []string{}
	}

	var kinds []approval.Kind
	for _, k := range p.Supervise.Approvals {
		kinds = append(kinds, approval.Kind(k))
	}
	st := supervisor.Duration(timeout)
	sc := supervisor.Config{
		Listen:            ":" + strconv.Itoa(plan.SupervisePort),
		Bottle:            p.Slug,
		AgentTokenFile:    agentToken,
		OperatorTokenFile: operatorToken,
		Approvals:         supervisor.Policy{Kinds: kinds, Timeout: &st},
		AuditFile:         written("audit-supervisor.jsonl"),
	}

	data, err := json.MarshalIndent(bundle.Config{Bottle: p.Slug, Proxy: pc, Gate: gc, Supervisor: sc, Relay: relayConfig(p, written)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the bundle configuration: %w", err)
	}
	if err := writePrivate(filepath.Join(p.StageDir, ConfigFile), append(data, '\n')); err != nil {
		return nil, fmt.Errorf("writing the bundle configuration: %w", err)
	}
	return mounts, nil
}

func hasApproval(p plan.Plan, kind string) bool {
	for _, k := range p.Supervise.Approvals {
		if k == kind {
			return true
		}
	}
	return false
}

// secretFile is the value of one secret and its file's name in the
// secrets dir.
type secretFile struct {
	name, value string
	secret      spec.Secret
}

// secretFiles reads the values of p's secrets (getenv: the host's
// environment); an optional secret without a value has no file.
func secretFiles(p plan.Plan, getenv func(string) string) ([]secretFile, error) {
	var files []secretFile
	for i, s := range p.Egress.Secrets {
		value, err := secretValue(s, getenv)
		if err != nil {
			return nil, err
		}
		if value != "" {
			files = append(files, secretFile{name: strconv.Itoa(i), value: value, secret: s})
		}
	}
	return files, nil
}

// secretValue reads a secret from its host-side source; "" for an optional
// secret whose source is unset.
func secretValue(s spec.Secret, getenv func(string) string) (string, error) {
	var v, src string
	switch {
	case s.FromEnv != "":
		v, src = getenv(s.FromEnv), "$"+s.FromEnv
	case s.FromFile != "":
		data, err := os.ReadFile(s.FromFile)
		if err != nil && !(s.Optional && errors.Is(err, fs.ErrNotExist)) {
			return "", fmt.Errorf("reading the secret for %s from %s: %w", s.Host, s.FromFile, err)
		}
		v, src = string(data), s.FromFile
	}
	v = strings.TrimSpace(v)
	if v == "" && !s.Optional {
		return "", fmt.Errorf("%w: the %s header for %s comes from %s, which is empty or unset; set it, or remove the secret from bottle.yaml",
			ErrSecretMissing, s.Header, s.Host, src)
	}
	return v, nil
}

func writePrivate(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}
