package proxy

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
)

// policy is the compiled form of the rules and secrets.
type policy struct {
	rules     []rule
	secrets   map[string][]secret
	redactors map[string]*redactor // per host with secrets: what responses must not carry
}

type rule struct {
	Rule
	label  string // "rules[2] *.github.com", for audit lines and refusals
	exact  string // normalised host, when not a wildcard
	suffix string // ".github.com" for "*.github.com"
	ports  []int
}

type secret struct {
	Secret
	value string
}

// verdict is what the policy says about a connection or a request.
type verdict struct {
	allow     bool
	listed    bool   // some rule names host:port (so approvals do not apply)
	reach     reach  // the address classes allowing rules opt the host in to
	intercept bool   // TLS must be terminated: secrets or method/path rules
	rule      string // label of the deciding rule, empty when unlisted
	reason    string // why a request is refused, for the agent
	err       error  // the guard refused the destination, or it does not resolve
}

func compilePolicy(cfg Config, secretValues map[int]string) *policy {
	p := &policy{secrets: map[string][]secret{}}
	for i, r := range cfg.Rules {
		c := rule{Rule: r, label: fmt.Sprintf("rules[%d] %s", i, r.Host), ports: r.Ports}
		if len(c.ports) == 0 {
			c.ports = DefaultPorts
		}
		if s, ok := strings.CutPrefix(r.Host, "*."); ok {
			c.suffix = "." + normHost(s)
		} else {
			c.exact = normHost(r.Host)
		}
		p.rules = append(p.rules, c)
	}
	for i, s := range cfg.Secrets {
		h := normHost(s.Host)
		p.secrets[h] = append(p.secrets[h], secret{Secret: s, value: secretValues[i]})
	}
	p.redactors = map[string]*redactor{}
	for h, ss := range p.secrets {
		if r := newRedactor(ss); r != nil {
			p.redactors[h] = r
		}
	}
	return p
}

// normHost lower-cases a host, drops a trailing dot and IPv6 brackets, and
// writes IP literals in their canonical form (IPv4-mapped IPv6 as IPv4). It
// returns "" for what cannot be a host: zones, empty names, stray bytes.
func normHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if ip, err := parseIP(h); err == nil {
		return ip.String()
	}
	if strings.ContainsAny(h, "[]:%") || !validDNSName(h) {
		return ""
	}
	return h
}

// parseIP parses an IP literal without a zone, unmapping IPv4-in-IPv6.
func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("IP address %q has a zone", s)
	}
	return ip.Unmap(), nil
}

func (r *rule) matchHost(host string) bool {
	if r.suffix != "" {
		return len(host) > len(r.suffix) && strings.HasSuffix(host, r.suffix) && !isIPLiteral(host)
	}
	return host == r.exact
}

func isIPLiteral(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

func (r *rule) matchPort(port int) bool { return slices.Contains(r.ports, port) }

// matchRequest reports whether a request falls under the rule's methods and
// paths. A deny rule matches a path if either the raw or the cleaned form
// does; an allow rule needs a path that is already clean, so that "/a/../b"
// cannot ride on an allowed "/a/*".
func (r *rule) matchRequest(method, rawPath string) bool {
	if len(r.Methods) > 0 && !slices.Contains(r.Methods, method) {
		return false
	}
	if len(r.Paths) == 0 {
		return true
	}
	clean := cleanPath(rawPath)
	for _, pat := range r.Paths {
		if r.Deny {
			if matchPath(pat, rawPath) || matchPath(pat, clean) {
				return true
			}
		} else if clean == rawPath && matchPath(pat, rawPath) {
			return true
		}
	}
	return false
}

func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func matchPath(pattern, p string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(p, prefix)
	}
	return p == pattern
}

// connect decides a CONNECT (or the host-and-port part of any request):
// method and path rules cannot be checked yet, so they only make the host
// intercepted.
func (p *policy) connect(host string, port int) verdict {
	var v verdict
	_, v.intercept = p.secrets[host]
	allowedBy := ""
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matchHost(host) || !r.matchPort(port) {
			continue
		}
		if r.l7() {
			v.intercept = true
		}
		// A deny rule narrowed to methods or paths says nothing about the
		// rest of the host: it alone does not list the host.
		if !r.Deny || !r.l7() {
			v.listed = true
		}
		switch {
		case r.Deny && !r.l7():
			return verdict{listed: true, rule: r.label, reason: fmt.Sprintf("%s:%d is refused by egress rule %s", host, port, r.label)}
		case !r.Deny:
			v.allow = true
			v.reach |= r.reach()
			if allowedBy == "" || !r.l7() {
				allowedBy = r.label
			}
		}
	}
	v.rule = allowedBy
	if !v.allow && v.listed {
		v.reason = fmt.Sprintf("%s:%d is not allowed by any egress rule (only refused by some)", host, port)
	}
	return v
}

// request decides one HTTP request to host:port.
func (p *policy) request(host string, port int, method, rawPath string) verdict {
	v := verdict{}
	_, v.intercept = p.secrets[host]
	allowedBy := ""
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matchHost(host) || !r.matchPort(port) {
			continue
		}
		if r.l7() {
			v.intercept = true
		}
		if !r.Deny {
			v.listed = true
		}
		if !r.matchRequest(method, rawPath) {
			continue
		}
		if r.Deny {
			return verdict{listed: true, intercept: v.intercept, rule: r.label,
				reason: fmt.Sprintf("%s %s on %s:%d is refused by egress rule %s", method, rawPath, host, port, r.label)}
		}
		v.allow = true
		v.reach |= r.reach()
		if allowedBy == "" {
			allowedBy = r.label
		}
	}
	v.rule = allowedBy
	if !v.allow && v.listed {
		v.reason = fmt.Sprintf("%s %s on %s:%d is not allowed: the egress rules for this host allow only some methods and paths", method, rawPath, host, port)
	}
	return v
}

// reachAllowed returns the address classes the allowing rules for host:port
// opt it in to.
func (p *policy) reachAllowed(host string, port int) reach {
	var out reach
	for i := range p.rules {
		r := &p.rules[i]
		if !r.Deny && r.matchHost(host) && r.matchPort(port) {
			out |= r.reach()
		}
	}
	return out
}

// requestPath returns the path of a request's URL as a rule sees it: decoded,
// so that "%2F" cannot hide a "/" from a path rule.
func requestPath(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	return u.Path
}
