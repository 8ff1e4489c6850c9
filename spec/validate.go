package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

type problem struct {
	path string // YAML path, e.g. $.egress.allow[0].host
	msg  string
}

// validate checks what the YAML types cannot: enumerations, host and ref
// patterns, secrets given as literals.
func (s *Spec) validate() []problem {
	var ps []problem
	add := func(p, format string, args ...any) { ps = append(ps, problem{p, fmt.Sprintf(format, args...)}) }

	if s.Name != "" {
		if err := ValidateName(s.Name); err != nil {
			add("$.name", "%v", err)
		}
	}
	if !oneOf(s.Backend, "", BackendAuto, BackendSmolvm, BackendDocker) {
		add("$.backend", "backend %q is not one of auto, smolvm, docker", s.Backend)
	}
	if !oneOf(s.NetworkMode, "", NetworkAuto, NetworkBridge, NetworkLoopback) {
		add("$.network_mode", "network_mode %q is not one of auto, bridge, loopback", s.NetworkMode)
	}

	a := s.Agent
	if a.Provider != "" && !oneOf(a.Provider, ProviderNames()...) {
		add("$.agent.provider", "provider %q is unknown: use one of %s", a.Provider, strings.Join(ProviderNames(), ", "))
	}
	if a.Image != "" && a.Dockerfile != "" {
		add("$.agent.image", "agent.image and agent.dockerfile exclude each other: an image is used as it is, a Dockerfile is built")
	}
	if a.Prompt != "" && a.PromptFile != "" {
		add("$.agent.prompt_file", "agent.prompt and agent.prompt_file exclude each other")
	}
	for k := range a.Env {
		if !envName.MatchString(k) {
			add("$.agent.env."+k, "%q is not an environment variable name", k)
		} else if LooksSecret(k) {
			add("$.agent.env."+k, "%s looks like a secret: agent.env ends up in the bottle in plain text; "+
				"give the proxy the secret instead (egress.secrets with from_env)", k)
		}
	}

	a.UserConfig.validate(add)

	checkRules := func(kind string, rules []Rule) {
		for i, r := range rules {
			p := fmt.Sprintf("$.egress.%s[%d]", kind, i)
			if err := ValidateHostPattern(r.Host); err != nil {
				add(p+".host", "%v", err)
			}
			for j, port := range r.Ports {
				if port < 1 || port > 65535 {
					add(fmt.Sprintf("%s.ports[%d]", p, j), "port %d is out of range 1-65535", port)
				}
			}
			for j, m := range r.Methods {
				if !httpMethod.MatchString(m) {
					add(fmt.Sprintf("%s.methods[%d]", p, j), "%q is not an HTTP method (GET, POST, ...)", m)
				}
			}
			for j, pp := range r.Paths {
				if !strings.HasPrefix(pp, "/") {
					add(fmt.Sprintf("%s.paths[%d]", p, j), "path pattern %q must start with /", pp)
				}
			}
			if kind == "deny" && (r.Private || r.WebSocket || len(r.Methods) > 0 || len(r.Paths) > 0) {
				add(p, "deny rules take host and ports only")
			}
		}
	}
	checkRules("allow", s.Egress.Allow)
	checkRules("deny", s.Egress.Deny)
	for i, sec := range s.Egress.Secrets {
		p := fmt.Sprintf("$.egress.secrets[%d]", i)
		if sec.Value != nil {
			add(p+".value", "a secret's value never goes in the spec (it would be committed and copied): "+
				"name its source on the host with from_env: VAR or from_file: PATH")
		}
		if err := ValidateHostPattern(sec.Host); err != nil || strings.HasPrefix(sec.Host, "*.") {
			add(p+".host", "secret host %q must be one exact host name", sec.Host)
		}
		if !headerName.MatchString(sec.Header) {
			add(p+".header", "header %q is not an HTTP header name", sec.Header)
		}
		switch {
		case sec.FromEnv == "" && sec.FromFile == "":
			if sec.Value == nil {
				add(p, "a secret needs a source on the host: from_env: VAR or from_file: PATH")
			}
		case sec.FromEnv != "" && sec.FromFile != "":
			add(p+".from_file", "from_env and from_file exclude each other")
		case sec.FromEnv != "" && !envName.MatchString(sec.FromEnv):
			add(p+".from_env", "%q is not an environment variable name", sec.FromEnv)
		}
		if sec.Format != "" && !strings.Contains(sec.Format, "{value}") {
			add(p+".format", "format %q must contain {value}", sec.Format)
		}
	}

	for i, ref := range s.Git.Push {
		if err := ValidateRefPattern(ref); err != nil {
			add(fmt.Sprintf("$.git.push[%d]", i), "%v", err)
		}
	}
	s.Git.ProtectedPaths.validate(add)

	for i, k := range s.Supervise.Approvals {
		if !oneOf(k, ApproveEgress, ApprovePush, ApproveTool) {
			add(fmt.Sprintf("$.supervise.approvals[%d]", i), "approval kind %q is not one of egress, push, tool", k)
		}
	}
	for i, msg := range CheckPorts(s.Ports) {
		add(fmt.Sprintf("$.ports[%d]", i), "%s", msg)
	}
	if s.Resources.CPUs < 0 {
		add("$.resources.cpus", "cpus must be positive")
	}
	return ps
}

var (
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	httpMethod = regexp.MustCompile(`^[A-Z]+$`)
	headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	dnsLabel   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	nameRule   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// LooksSecret reports whether an environment variable name suggests a
// credential.
func LooksSecret(name string) bool {
	n := strings.ToUpper(name)
	for _, s := range []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return strings.HasSuffix(n, "_KEY")
}

// ValidateName checks a bottle name given by the user: lower-case letters,
// digits and single dashes, at most 40 characters, so that it fits every
// name the plugin derives from it (smolvm machines, containers, networks,
// git remotes and branches).
func ValidateName(name string) error {
	if len(name) > MaxNameLen || !nameRule.MatchString(name) || strings.Contains(name, "--") {
		return fmt.Errorf("bottle name %q is invalid: use 1-%d lower-case letters, digits and single dashes, "+
			"starting and ending with a letter or digit", name, MaxNameLen)
	}
	return nil
}

// MaxNameLen bounds bottle names.
const MaxNameLen = 40

// ValidateHostPattern checks an egress host: an exact DNS name, an IP
// literal, or "*.suffix" (subdomains of suffix).
func ValidateHostPattern(h string) error {
	if h == "" {
		return fmt.Errorf("host is empty: write a host name such as api.example.com or *.example.com")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		name = rest
		if !strings.Contains(name, ".") {
			return fmt.Errorf("host pattern %q is too wide: a wildcard needs a suffix with a dot, such as *.example.com", h)
		}
	}
	if strings.Contains(name, "*") {
		return fmt.Errorf("host pattern %q is invalid: a wildcard may only be the first label, as in *.example.com", h)
	}
	if name != strings.ToLower(name) {
		return fmt.Errorf("host %q must be lower case", h)
	}
	if len(name) > 253 {
		return fmt.Errorf("host %q is longer than 253 characters", h)
	}
	for _, l := range strings.Split(name, ".") {
		if !dnsLabel.MatchString(l) {
			return fmt.Errorf("host %q is not a valid DNS name (letters, digits and dashes between dots)", h)
		}
	}
	return nil
}

// ValidateRefPattern checks a git push pattern: a full ref name under refs/
// with "*" wildcards and the "{name}" placeholder.
func ValidateRefPattern(p string) error {
	if !strings.HasPrefix(p, "refs/") {
		return fmt.Errorf("ref pattern %q must be a full ref name starting with refs/ (e.g. refs/heads/bottle/{name}/*)", p)
	}
	r := strings.ReplaceAll(p, "{name}", "x")
	if strings.ContainsAny(r, " ~^:?[\\\x7f{}") || strings.Contains(r, "..") || strings.Contains(r, "//") ||
		strings.Contains(r, "@{") || strings.HasSuffix(r, "/") || strings.HasSuffix(r, ".") ||
		strings.HasSuffix(r, ".lock") {
		return fmt.Errorf("ref pattern %q is not a valid git ref name (see git check-ref-format)", p)
	}
	for _, c := range r {
		if c < 0x20 {
			return fmt.Errorf("ref pattern %q has a control character", p)
		}
	}
	return nil
}

func oneOf(v string, set ...string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// Warnings are what a spec allows that it may not mean to, said before a
// run (the preflight) and by config, without refusing the spec. Each starts
// with the YAML path it is about.
func (s *Spec) Warnings() []string {
	var ws []string
	for i, r := range s.Egress.Allow {
		suffix, ok := strings.CutPrefix(strings.TrimSuffix(strings.ToLower(r.Host), "."), "*.")
		if !ok {
			continue
		}
		if what := sharedHosting(suffix); what != "" {
			ws = append(ws, fmt.Sprintf("$.egress.allow[%d].host: %s lets the agent reach any subdomain of %s, where anyone can host content (%s): "+
				"an attacker's server too, to send your data to; allow the exact hosts the agent needs instead", i, r.Host, suffix, what))
		}
	}
	return ws
}

// userContentSuffixes are domains whose subdomains anyone can get and serve
// content (or a server) from, with what they are.
var userContentSuffixes = map[string]string{
	"githubusercontent.com":  "GitHub user content",
	"github.io":              "GitHub Pages",
	"gitlab.io":              "GitLab Pages",
	"s3.amazonaws.com":       "Amazon S3 buckets",
	"cloudfront.net":         "Amazon CloudFront distributions",
	"amplifyapp.com":         "AWS Amplify apps",
	"elasticbeanstalk.com":   "AWS Elastic Beanstalk apps",
	"lambda-url.on.aws":      "AWS Lambda function URLs",
	"blob.core.windows.net":  "Azure Blob storage accounts",
	"web.core.windows.net":   "Azure static websites",
	"azurewebsites.net":      "Azure App Service apps",
	"azureedge.net":          "Azure CDN endpoints",
	"azurestaticapps.net":    "Azure Static Web Apps",
	"trafficmanager.net":     "Azure Traffic Manager profiles",
	"appspot.com":            "Google App Engine apps",
	"storage.googleapis.com": "Google Cloud Storage buckets",
	"googleusercontent.com":  "Google user content",
	"run.app":                "Google Cloud Run services",
	"cloudfunctions.net":     "Google Cloud Functions",
	"web.app":                "Firebase Hosting sites",
	"firebaseapp.com":        "Firebase Hosting sites",
	"herokuapp.com":          "Heroku apps",
	"vercel.app":             "Vercel deployments",
	"netlify.app":            "Netlify sites",
	"pages.dev":              "Cloudflare Pages",
	"workers.dev":            "Cloudflare Workers",
	"r2.dev":                 "Cloudflare R2 buckets",
	"trycloudflare.com":      "Cloudflare quick tunnels",
	"fly.dev":                "Fly.io apps",
	"onrender.com":           "Render services",
	"railway.app":            "Railway apps",
	"repl.co":                "Replit apps",
	"glitch.me":              "Glitch apps",
	"surge.sh":               "Surge sites",
	"ngrok.io":               "ngrok tunnels",
	"ngrok-free.app":         "ngrok tunnels",
	"ngrok.app":              "ngrok tunnels",
	"loca.lt":                "localtunnel tunnels",
	"blogspot.com":           "Blogger blogs",
	"wordpress.com":          "WordPress.com sites",
	"digitaloceanspaces.com": "DigitalOcean Spaces buckets",
	"ondigitalocean.app":     "DigitalOcean apps",
}

// s3Regional is the regional S3 endpoints, whose subdomains are buckets.
var s3Regional = regexp.MustCompile(`^s3[.-][a-z0-9-]+\.amazonaws\.com$`)

// sharedHosting says what anyone can host under "*.suffix", or "" when the
// suffix is not known to be shared: suffix is a user-content domain, or a
// parent of one (amazonaws.com holds S3 buckets), or a public suffix itself
// (a whole top-level domain).
func sharedHosting(suffix string) string {
	if what := userContentSuffixes[suffix]; what != "" {
		return what
	}
	if s3Regional.MatchString(suffix) {
		return "Amazon S3 buckets"
	}
	if suffix == "amazonaws.com" {
		return "Amazon S3 buckets and other AWS endpoints"
	}
	if !strings.Contains(suffix, ".") {
		return "a whole top-level domain"
	}
	var under []string
	for d, what := range userContentSuffixes {
		if strings.HasSuffix(d, "."+suffix) {
			under = append(under, what)
		}
	}
	slices.Sort(under)
	return strings.Join(slices.Compact(under), ", ")
}
