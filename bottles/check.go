package bottles

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/probe"
	"github.com/docker-bottle/docker-bottle/probe/probeimage"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// Names of the check's stand-in hosts on the bundle's network.
const (
	checkAllowed  = "allowed.check.bottle"
	checkUnlisted = "unlisted.check.bottle"
	checkHeader   = "X-Bottle-Check"
	roleUpstream  = "check-upstream"
)

// CheckOptions say where the check runs.
type CheckOptions struct {
	Choice   plan.Choice
	Arch     string
	Pipeline *image.Pipeline // nil: the service's own
	Run      RunOptions      // Docker (and streams) as for a run
	// Keep leaves the check's bottle for inspection instead of removing it
	// (promise 6 is then not judged).
	Keep bool
}

// Check runs the probe agent in a real bottle and judges what it saw
// against DESIGN.md's promises. It brings its own stand-in hosts: an
// allowed one (TLS, with a canary secret the proxy must add) and an
// unlisted one, on the bundle's network, so it needs no internet.
func (s *Service) Check(ctx context.Context, o CheckOptions) (probe.Card, error) {
	work, err := os.MkdirTemp("", "docker-bottle-check-")
	if err != nil {
		return probe.Card{}, err
	}
	defer os.RemoveAll(work)
	repo, err := makeCheckRepository(ctx, work)
	if err != nil {
		return probe.Card{}, err
	}
	canary, err := writeCanary(filepath.Join(work, "canary"))
	if err != nil {
		return probe.Card{}, err
	}
	certDir, extraCA, err := checkCertificates(work)
	if err != nil {
		return probe.Card{}, err
	}
	engine, ok := s.engine.(client.APIClient)
	if !ok {
		return probe.Card{}, errors.New("check needs a full engine client")
	}
	probeTag, err := probeimage.Ensure(ctx, engine)
	if err != nil {
		return probe.Card{}, fmt.Errorf("preparing the probe image: %w", err)
	}
	// Something that listens on the host, on every address, and is not the
	// bundle: the probe must not reach it (a WARN in loopback mode).
	hostLn, err := net.Listen("tcp", ":0") //nolint:gosec // G102: every address, on purpose: see above
	if err != nil {
		return probe.Card{}, err
	}
	defer hostLn.Close()
	go func() {
		for {
			c, err := hostLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	hostPort := strconv.Itoa(hostLn.Addr().(*net.TCPAddr).Port)

	sp := spec.Spec{
		Name:  "check-" + randomHex(3),
		Agent: spec.Agent{Provider: spec.ProviderShell},
		Egress: spec.Egress{
			Allow:   []spec.Rule{{Host: checkAllowed, Ports: []int{80, 443}, Private: true}},
			Secrets: []spec.Secret{{Host: checkAllowed, Header: checkHeader, FromFile: filepath.Join(work, "canary")}},
		},
	}
	sum := sha256.Sum256([]byte(canary))
	var probeCfg probe.Config
	ro := o.Run
	ro.Prepare = PrepareOptions{Spec: sp.Resolve(spec.Defaults{Command: []string{probeimage.BinaryPath, "probe"}}), Workspace: repo,
		Provider: plan.Provider{Name: spec.ProviderShell}, Choice: o.Choice}
	ro.Image = image.Request{Image: probeTag}
	ro.Pipeline = o.Pipeline
	ro.Arch = o.Arch
	ro.BringUp = BringUpOptions{ExtraCAFile: extraCA}
	ro.Command = []string{probeimage.BinaryPath, "probe", "--config", plan.GuestDir + "/probe.json"}
	var report bytes.Buffer
	ro.Stdout = &report
	ro.BeforeLaunch = func(ctx context.Context, p plan.Plan) error {
		hex := hex.EncodeToString(sum[:])
		allowedIP, err := startUpstream(ctx, engine, p, probeTag, checkAllowed, certDir,
			"--secret-header", checkHeader, "--secret-sha256", hex)
		if err != nil {
			return err
		}
		if _, err := startUpstream(ctx, engine, p, probeTag, checkUnlisted, ""); err != nil {
			return err
		}
		b, err := s.Backend(p)
		if err != nil {
			return err
		}
		loopback := net.JoinHostPort(b.HostAddr(p).String(), hostPort)
		if p.ThroughEngine() {
			// This host may not be the engine's: what must stay out of
			// reach is a port on the engine's host.
			port, err := startHostListener(ctx, engine, p, probeTag)
			if err != nil {
				return err
			}
			s.step("check: a listener on the engine's host at port %s, which the bottle must not reach", port)
			loopback = net.JoinHostPort(b.HostAddr(p).String(), port)
		}
		probeCfg = probe.Config{
			Allowed:  []string{"https://" + checkAllowed + "/secret", "http://" + checkAllowed + "/"},
			Unlisted: []string{"http://" + checkUnlisted + "/"},
			Direct:   []string{allowedIP + ":80"},
			Lookup:   []string{"exfiltrate.example.com", checkUnlisted},
			Loopback: []string{loopback},
			Secrets:  []probe.SecretHash{{SHA256: hex, Len: len(canary)}},
		}
		data, err := json.MarshalIndent(probeCfg, "", "  ")
		if err != nil {
			return err
		}
		return bringup.WriteStageFile(ctx, engine, p, stage.GuestDir+"/probe.json", data, 0o644)
	}

	res, err := s.Run(ctx, ro)
	slug := res.Plan.Slug
	if err != nil {
		return probe.Card{}, err
	}
	rep, derr := probe.Decode(report.Bytes())
	card := probe.Card{}
	if derr == nil {
		card = probe.Judge(rep, probe.Expect{Backend: res.Plan.Backend, NetworkMode: res.Plan.NetworkMode})
		card.Add(probe.PromiseResult{Promise: 3, Items: []probe.Item{s.secretOnHost(context.WithoutCancel(ctx), engine, res.Plan, canary)}})
		card.Add(probe.PromiseResult{Promise: 4, Items: []probe.Item{hostFetch(ctx, engine, res.Plan, s.gitEndpoint())}})
	}
	if o.Keep {
		return card, derr
	}
	card.Add(s.removeAndVerify(context.WithoutCancel(ctx), res.Plan))
	if derr != nil {
		return card, fmt.Errorf("the probe in bottle %s printed no report (%v); its output:\n%s", slug, derr, report.String())
	}
	return card, nil
}

// secretOnHost looks for the canary where a careless plugin would leak it:
// the plan and bundle configuration, the audit files (in the stage dir, or
// in the bottle's volumes on the engine), what `docker inspect` shows of
// the bottle's containers, and their logs. Only the bundle's tmpfs may
// hold it.
func (s *Service) secretOnHost(ctx context.Context, e client.APIClient, p plan.Plan, canary string) probe.Item {
	item := probe.Item{Check: "secret-on-host", Target: p.Slug, Verdict: probe.Pass}
	var where []string
	// Read through an os.Root: a symlink in the stage dir leads nowhere
	// outside it. What cannot be read is skipped: it holds no leak a reader
	// could find either.
	if root, err := os.OpenRoot(p.StageDir); err == nil {
		_ = fs.WalkDir(root.FS(), ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				if d != nil && d.IsDir() && d.Name() == stage.GateRepo {
					return fs.SkipDir
				}
				return nil
			}
			if data, err := root.ReadFile(path); err == nil && bytes.Contains(data, []byte(canary)) {
				where = append(where, filepath.Join(p.StageDir, path))
			}
			return nil
		})
		_ = root.Close() // opened to read only
	}
	if p.Bundle.StageOnEngine {
		found, err := bringup.FindInStage(ctx, e, p, []byte(canary))
		if err != nil {
			item.Verdict = probe.Fail
			item.Evidence = err.Error()
			return item
		}
		where = append(where, found...)
	}
	f := make(client.Filters).Add("label", plan.LabelBottle+"="+p.Slug)
	cs, _ := e.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	for _, c := range cs.Items {
		if res, err := e.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{}); err == nil && bytes.Contains(res.Raw, []byte(canary)) {
			where = append(where, "docker inspect "+c.Names[0])
		}
		if logs := bringup.Logs(ctx, s.engine, c.ID, 10000); strings.Contains(logs, canary) {
			where = append(where, "docker logs "+c.Names[0])
		}
	}
	if len(where) > 0 {
		item.Verdict = probe.Fail
		item.Evidence = fmt.Sprintf("the secret appears in %v", where)
	} else {
		item.Evidence = fmt.Sprintf("not in the stage dir's files (plan, bundle configuration, audit), nor in docker inspect or logs of %d containers", len(cs.Items))
		if p.Bundle.StageOnEngine {
			item.Evidence += ", nor in the files of its volumes on the engine"
		}
	}
	return item
}

// hostFetch fetches the agent's branch on the host through the git remote
// the plugin registered, as a user reviewing its work would; endpoint is
// the engine git-remote-bottle reaches for a bottle::NAME remote.
func hostFetch(ctx context.Context, e bringup.StageCopier, p plan.Plan, endpoint gitstage.Option) probe.Item {
	item := probe.Item{Check: "host-fetch", Target: "git fetch " + p.GitGate.Remote, Verdict: probe.Fail}
	if err := bringup.SyncGate(ctx, e, p); err != nil {
		item.Evidence = err.Error()
		return item
	}
	if err := gitstage.Fetch(ctx, p.Workspace, p.GitGate.Remote, endpoint); err != nil {
		item.Evidence = fmt.Sprintf("git fetch failed: %v", err)
		return item
	}
	ref := gitstage.TrackingRef(p.Slug, p.GitGate.Branch)
	commit, err := gitstage.Resolve(ctx, p.Workspace, ref)
	if err != nil {
		item.Evidence = "after git fetch there is no " + ref
		return item
	}
	item.Verdict = probe.Pass
	item.Evidence = fmt.Sprintf("the agent's branch arrived in the user's repository as %s at %.12s", ref, commit)
	return item
}

// removeAndVerify removes the check's bottle and judges promise 6: nothing
// of it is left on the engine, in smolvm, or on disk.
func (s *Service) removeAndVerify(ctx context.Context, p plan.Plan) probe.PromiseResult {
	item := probe.Item{Check: "cleanup", Target: p.Slug, Verdict: probe.Pass}
	var left []string
	if err := s.Remove(ctx, p.Slug, false); err != nil {
		left = append(left, "remove: "+err.Error())
	}
	if engine, ok := s.engine.(client.APIClient); ok {
		f := make(client.Filters).Add("label", plan.LabelBottle+"="+p.Slug)
		if cs, err := engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
			for _, c := range cs.Items {
				left = append(left, "container "+c.Names[0])
			}
		}
		if ns, err := engine.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
			for _, n := range ns.Items {
				left = append(left, "network "+n.Name)
			}
		}
		if vs, err := engine.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err == nil {
			for _, v := range vs.Items {
				left = append(left, "volume "+v.Name)
			}
		}
	}
	if b, err := s.Backend(p); err == nil && b.Status(ctx, p) != StateMissing {
		a := b.Objects(p)[0]
		left = append(left, a.Kind+" "+a.Name)
	}
	if _, err := os.Stat(p.StageDir); !errors.Is(err, os.ErrNotExist) {
		left = append(left, "stage dir "+p.StageDir)
	}
	if len(left) > 0 {
		item.Verdict = probe.Fail
		item.Evidence = fmt.Sprintf("left behind: %v", left)
	} else {
		item.Evidence = "no container, volume, network, machine or stage dir of the bottle is left"
	}
	return probe.PromiseResult{Promise: 6, Items: []probe.Item{item}}
}

// startUpstream runs a stand-in host (the probe binary's upstream) on the
// bundle's network under name, labelled with the bottle so its removal
// takes it too; it returns its IP.
func startUpstream(ctx context.Context, e client.APIClient, p plan.Plan, image, name, certDir string, extra ...string) (string, error) {
	cmd := append([]string{"upstream", "--name", name}, extra...)
	if certDir != "" {
		cmd = append(cmd, "--cert", "/certs/cert.pem", "--key", "/certs/key.pem")
	}
	c, err := e.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Entrypoint: []string{probeimage.BinaryPath}, Cmd: cmd, User: "65534:65534",
			Labels: map[string]string{plan.LabelBottle: p.Slug, plan.LabelRole: roleUpstream}},
		// The certificate is copied in before start (the engine may be on
		// another host, which cannot bind this one's files), and the
		// engine copies into no read-only root filesystem.
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(p.Bundle.Network), ReadonlyRootfs: certDir == "",
			CapDrop: []string{"ALL"}},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			p.Bundle.Network: {Aliases: []string{name}},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("creating the stand-in host %s: %w", name, err)
	}
	if certDir != "" {
		if err := copyCertificates(ctx, e, c.ID, certDir); err != nil {
			return "", fmt.Errorf("giving the stand-in host %s its certificate: %w", name, err)
		}
	}
	if _, err := e.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("starting the stand-in host %s: %w", name, err)
	}
	res, err := e.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		return "", err
	}
	ep := res.Container.NetworkSettings.Networks[p.Bundle.Network]
	if ep == nil {
		return "", fmt.Errorf("the stand-in host %s has no address", name)
	}
	return ep.IPAddress.String(), nil
}

// startHostListener starts, in the engine host's network namespace, a
// server on every address and a free port that is not the bundle's, and
// returns the port: the bottle must not reach it.
func startHostListener(ctx context.Context, e client.APIClient, p plan.Plan, image string) (string, error) {
	c, err := e.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Entrypoint: []string{probeimage.BinaryPath},
			Cmd: []string{"upstream", "--name", "engine-host", "--listen", ":0"}, User: "65534:65534",
			Labels: map[string]string{plan.LabelBottle: p.Slug, plan.LabelRole: roleUpstream}},
		HostConfig: &container.HostConfig{NetworkMode: network.NetworkHost, ReadonlyRootfs: true, CapDrop: []string{"ALL"}},
	})
	if err != nil {
		return "", fmt.Errorf("creating the listener on the engine's host: %w", err)
	}
	if _, err := e.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("starting the listener on the engine's host: %w", err)
	}
	// It says where it listens on its first line, once it does.
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	logs, err := e.ContainerLogs(lctx, c.ID, client.ContainerLogsOptions{ShowStderr: true, Follow: true})
	if err != nil {
		return "", fmt.Errorf("reading where the listener on the engine's host listens: %w", err)
	}
	defer logs.Close()
	var line bytes.Buffer
	if _, err := stdcopy.StdCopy(io.Discard, &lineWriter{&line}, io.LimitReader(logs, 4096)); err != nil && !errors.Is(err, errLine) {
		return "", fmt.Errorf("reading where the listener on the engine's host listens: %w", err)
	}
	_, addr, ok := strings.Cut(strings.TrimSpace(line.String()), " listening on ")
	if !ok {
		return "", fmt.Errorf("the listener on the engine's host did not say where it listens: %q", line.String())
	}
	_, port, err := net.SplitHostPort(addr)
	return port, err
}

// errLine ends a copy at the first line (lineWriter).
var errLine = errors.New("a whole line")

// lineWriter keeps what is written up to the first newline, then ends the
// copy with errLine.
type lineWriter struct{ b *bytes.Buffer }

func (w *lineWriter) Write(p []byte) (int, error) {
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		w.b.Write(p[:i])
		return i, errLine
	}
	return w.b.Write(p)
}

// copyCertificates copies the stand-in host's certificate and key from
// certDir to /certs of container id, through the engine API, readable by
// the user it runs as (nobody).
func copyCertificates(ctx context.Context, e client.APIClient, id, certDir string) error {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "certs/", Mode: 0o755, ModTime: now}); err != nil {
		return err
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		data, err := os.ReadFile(filepath.Join(certDir, f)) //nolint:gosec // G304: the check's own work dir
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "certs/" + f, Mode: 0o400, Size: int64(len(data)),
			Uid: 65534, Gid: 65534, ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := e.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &b})
	return err
}

// makeCheckRepository makes the repository the check's bottle works on.
func makeCheckRepository(ctx context.Context, work string) (string, error) {
	dir := filepath.Join(work, "repo")
	if err := gitstage.Init(ctx, dir, "docker bottle check <check@bottle.invalid>", "check"); err != nil {
		return "", fmt.Errorf("making the check's repository: %w", err)
	}
	return dir, nil
}

// writeCanary writes a random secret to a 0600 file; only its hash goes
// anywhere near the bottle.
func writeCanary(path string) (string, error) {
	v := "bottle-canary-" + rand.Text()
	return v, os.WriteFile(path, []byte(v), 0o600)
}

// checkCertificates makes a throwaway CA and a certificate for the allowed
// stand-in host; the proxy trusts the CA as an extra CA.
func checkCertificates(work string) (certDir, caFile string, err error) {
	ca, err := pki.LoadOrCreateCA(filepath.Join(work, "ca"))
	if err != nil {
		return "", "", err
	}
	m, err := pki.NewMinter(ca, 0)
	if err != nil {
		return "", "", err
	}
	leaf, err := m.Leaf(checkAllowed)
	if err != nil {
		return "", "", err
	}
	key, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		return "", "", err
	}
	certDir = filepath.Join(work, "certs")
	if err := os.Mkdir(certDir, 0o755); err != nil {
		return "", "", err
	}
	var chain []byte
	for _, der := range leaf.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	// The stand-in host runs as nobody; this throwaway key protects nothing
	// but the check's own upstream.
	if err := os.WriteFile(filepath.Join(certDir, "cert.pem"), chain, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(certDir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return "", "", err
	}
	return certDir, filepath.Join(work, "ca", pki.CertFile), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
