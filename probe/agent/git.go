package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/docker-bottle/docker-bottle/probe"
)

// probeFile is the file each probe commit adds.
const probeFile = ".bottle-probe"

var installHTTP sync.Once

// gitChecks clones from the gate, then pushes a commit to the bottle's
// branch (which must be accepted) and one to the protected ref (which must
// be refused).
func gitChecks(ctx context.Context, cfg probe.Config, token string, tokenErr error) []probe.Check {
	clone := probe.Check{Kind: probe.KindGitClone, Target: cfg.GateURL,
		Tried: "a clone from the git gate (HTTP Basic, the bottle's token as password)"}
	branchRef := cfg.Branch
	if branchRef != "" && !strings.HasPrefix(branchRef, "refs/") {
		branchRef = "refs/heads/" + branchRef
	}
	pushBranch := probe.Check{Kind: probe.KindGitPushBranch, Target: branchRef,
		Tried: "a push of a new commit to the bottle's branch " + branchRef}
	if branchRef == "" {
		pushBranch.Tried = "a push of a new commit to the bottle's branch (unknown)"
	}
	pushProtected := probe.Check{Kind: probe.KindGitPushProtected, Target: cfg.ProtectedRef,
		Tried: "a push of a new (fast-forward) commit to " + cfg.ProtectedRef + ", which the bottle may not write"}
	notTried := func(why string) []probe.Check {
		for _, c := range []*probe.Check{&pushBranch, &pushProtected} {
			c.Outcome, c.Result = probe.OutcomeError, "not tried: "+why
		}
		return []probe.Check{clone, pushBranch, pushProtected}
	}
	switch {
	case cfg.GateURL == "":
		clone.Outcome, clone.Result = probe.OutcomeError, "no gate to clone from: $BOTTLE_GATE_URL is empty and --gate was not given"
		return notTried("no gate")
	case tokenErr != nil:
		clone.Outcome, clone.Result = probe.OutcomeError, tokenErr.Error()
		return notTried("no token")
	}
	// The gate is reached directly, never through a proxy from the
	// environment, which must not see the token.
	installHTTP.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		client.InstallProtocol("http", githttp.NewClient(&http.Client{Transport: t}))
	})
	auth := &githttp.BasicAuth{Username: "bottle", Password: token}
	url := strings.TrimRight(cfg.GateURL, "/")

	ctx1, cancel := context.WithTimeout(ctx, cfg.GitTimeout.D())
	defer cancel()
	var msgs bytes.Buffer
	st := memory.NewStorage()
	start := time.Now()
	repo, err := git.CloneContext(ctx1, st, nil, &git.CloneOptions{URL: url, Auth: auth, Depth: cfg.GitDepth, Tags: git.NoTags, Progress: &msgs})
	clone.Evidence.Elapsed = probe.Millis(time.Since(start))
	if err != nil {
		clone.Outcome, clone.Evidence.Error = probe.OutcomeFailed, err.Error()
		clone.Evidence.Messages = excerpt(msgs.Bytes())
		clone.Result = "the clone failed: " + err.Error()
		return notTried("the clone failed")
	}
	n := 0
	if refs, err := repo.References(); err == nil {
		refs.ForEach(func(*plumbing.Reference) error { n++; return nil }) //nolint:errcheck // a failed read leaves n at what was counted
	}
	clone.Evidence.Refs = n
	head, err := repo.Head()
	if err == nil {
		clone.Evidence.Commit = head.Hash().String()
		clone.Evidence.Ref = head.Name().String()
	}
	clone.Outcome, clone.Result = probe.OutcomeOK, fmt.Sprintf("cloned %d refs in %s", n, time.Duration(clone.Evidence.Elapsed).Round(time.Millisecond))

	if branchRef == "" {
		pushBranch.Outcome, pushBranch.Result = probe.OutcomeError, "not tried: the bottle's branch is unknown ($BOTTLE_BRANCH is empty and --branch was not given)"
	} else {
		pushBranch = push(ctx, cfg, repo, st, auth, pushBranch, branchRef)
	}
	pushProtected = push(ctx, cfg, repo, st, auth, pushProtected, cfg.ProtectedRef)
	return []probe.Check{clone, pushBranch, pushProtected}
}

// push makes a commit on top of the ref's current tip (so that the update is
// a fast-forward and only the gate's rules can refuse it) and pushes it.
func push(ctx context.Context, cfg probe.Config, repo *git.Repository, st *memory.Storage, auth *githttp.BasicAuth, c probe.Check, ref string) probe.Check {
	c.Evidence.Ref = ref
	parent := plumbing.ZeroHash
	if short, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		if r, err := repo.Reference(plumbing.NewRemoteReferenceName("origin", short), true); err == nil {
			parent = r.Hash()
		}
	}
	if parent.IsZero() {
		if h, err := repo.Head(); err == nil {
			parent = h.Hash()
		}
	}
	commit, err := probeCommit(st, parent, "docker bottle probe: a push to "+ref)
	if err != nil {
		c.Outcome, c.Result, c.Evidence.Error = probe.OutcomeError, "could not make the commit: "+err.Error(), err.Error()
		return c
	}
	c.Evidence.Commit = commit.String()
	local := plumbing.ReferenceName("refs/probe/" + strings.TrimPrefix(ref, "refs/"))
	if err := st.SetReference(plumbing.NewHashReference(local, commit)); err != nil {
		c.Outcome, c.Result, c.Evidence.Error = probe.OutcomeError, "could not store the commit's ref: "+err.Error(), err.Error()
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.GitTimeout.D())
	defer cancel()
	var msgs bytes.Buffer
	start := time.Now()
	err = repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: auth, Progress: &msgs,
		RefSpecs: []config.RefSpec{config.RefSpec(local.String() + ":" + ref)}})
	c.Evidence.Elapsed = probe.Millis(time.Since(start))
	c.Evidence.Messages = excerpt(msgs.Bytes())
	switch {
	case err == nil:
		c.Outcome, c.Result = probe.OutcomeOK, "the gate accepted the push"
	case strings.Contains(err.Error(), "command error on"):
		// The gate's "ng REF REASON" line.
		c.Evidence.Error = err.Error()
		reason := err.Error()
		if _, r, ok := strings.Cut(reason, ref+": "); ok {
			reason = r
		}
		c.Outcome, c.Result = probe.OutcomeRefused, "the gate refused the push: "+reason
	default:
		c.Evidence.Error = err.Error()
		c.Outcome, c.Result = probe.OutcomeFailed, "the push failed: "+err.Error()
	}
	return c
}

// probeCommit stores a commit whose tree is parent's plus probeFile.
func probeCommit(st *memory.Storage, parent plumbing.Hash, msg string) (plumbing.Hash, error) {
	blob := st.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	w, err := blob.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	fmt.Fprintf(w, "written by the docker bottle probe at %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	w.Close()
	blobHash, err := st.SetEncodedObject(blob)
	if err != nil {
		return plumbing.ZeroHash, err
	}

	var entries []object.TreeEntry
	var parents []plumbing.Hash
	if !parent.IsZero() {
		pc, err := object.GetCommit(st, parent)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("reading the parent commit %s: %w", parent, err)
		}
		tree, err := pc.Tree()
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("reading the parent's tree: %w", err)
		}
		for _, e := range tree.Entries {
			if e.Name != probeFile {
				entries = append(entries, e)
			}
		}
		parents = []plumbing.Hash{parent}
	}
	entries = append(entries, object.TreeEntry{Name: probeFile, Mode: filemode.Regular, Hash: blobHash})
	// git orders tree entries by name, a directory's name as if it ended
	// in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	tree := &object.Tree{Entries: entries}
	to := st.NewEncodedObject()
	if err := tree.Encode(to); err != nil {
		return plumbing.ZeroHash, err
	}
	treeHash, err := st.SetEncodedObject(to)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	sig := object.Signature{Name: "docker bottle probe", Email: "probe@docker-bottle.invalid", When: time.Now()}
	commit := &object.Commit{Author: sig, Committer: sig, Message: msg + "\n", TreeHash: treeHash, ParentHashes: parents}
	co := st.NewEncodedObject()
	if err := commit.Encode(co); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(co)
}
