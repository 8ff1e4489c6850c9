package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
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
	websocket bool   // an allowing rule lets WebSocket upgrades through
	noSNI     bool   // an allowing rule lets a raw tunnel's TLS name no server
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
// does, in any case (some servers fold it), and a method in any case; an
// allow rule needs a path that is already clean, so that "/a/../b" cannot
// ride on an allowed "/a/*", and the method as the rule spells it.
func (r *rule) matchRequest(method, rawPath string) bool {
	if len(r.Methods) > 0 && !slices.ContainsFunc(r.Methods, func(m string) bool {
		return m == method || r.Deny && strings.EqualFold(m, method)
	}) {
		return false
	}
	if len(r.Paths) == 0 {
		return true
	}
	clean := cleanPath(rawPath)
	for _, pat := range r.Paths {
		if r.Deny {
			lp, lraw, lclean := strings.ToLower(pat), strings.ToLower(rawPath), strings.ToLower(clean)
			if matchPath(lp, lraw) || matchPath(lp, lclean) {
				return true
			}
		} else if clean == rawPath && matchPath(pat, rawPath) {
			return true
		}
	}
	return false
}

// ambiguousPath says why an upstream could read a request's path as another
// path than the one the rules see, or returns "". path is the decoded path,
// raw the path as sent when its escaping differs from the usual one.
func ambiguousPath(path, raw string) string {
	lraw := strings.ToLower(raw)
	switch {
	case strings.Contains(path, ";"):
		return "it holds \";\" (a path parameter such as \"..;\" takes some servers to another path)"
	case strings.Contains(path, "\\"):
		return "it holds a backslash, which some servers read as \"/\""
	case strings.Contains(lraw, "%2f"):
		return "it holds an encoded slash (%2F)"
	case strings.Contains(path, "%"):
		return "it is encoded twice (%25), which some servers decode twice"
	case !utf8.ValidString(path) || strings.ContainsFunc(path, unicode.IsControl):
		return "it holds control characters or bytes that are not UTF-8"
	}
	return ""
}

// methodOverrides are the headers with which some servers take a request's
// method from the client instead of its request line.
var methodOverrides = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// methodOverride names the header or query parameter of u and h that could
// override the method, or returns "".
func methodOverride(u *url.URL, h http.Header) string {
	for _, k := range methodOverrides {
		if _, ok := h[k]; ok {
			return "header " + k
		}
	}
	if strings.Contains(u.RawQuery, "_method") {
		for k := range u.Query() {
			if strings.EqualFold(k, "_method") {
				return "query parameter " + k
			}
		}
	}
	return ""
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
			v.noSNI = v.noSNI || r.AllowNoSNI
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

// narrowed reports whether some rule for host:port matches paths, and
// whether some matches methods.
func (p *policy) narrowed(host string, port int) (paths, methods bool) {
	for i := range p.rules {
		r := &p.rules[i]
		if r.matchHost(host) && r.matchPort(port) {
			paths = paths || len(r.Paths) > 0
			methods = methods || len(r.Methods) > 0
		}
	}
	return paths, methods
}

// request decides one HTTP request to host:port. On a host with path
// rules, a path an upstream could read as another is refused; on a host
// with method rules, so is a request that could override its method.
func (p *policy) request(host string, port int, method string, u *url.URL, h http.Header) verdict {
	v := verdict{}
	_, v.intercept = p.secrets[host]
	path := requestPath(u)
	allowedBy := ""
	paths, methods := p.narrowed(host, port)
	if paths {
		if why := ambiguousPath(path, u.RawPath); why != "" {
			return verdict{listed: true, intercept: true,
				reason: fmt.Sprintf("the path of %s %s on %s:%d is refused: %s, and the egress rules for this host match paths; send the path plainly", method, u.EscapedPath(), host, port, why)}
		}
	}
	if methods {
		if what := methodOverride(u, h); what != "" {
			return verdict{listed: true, intercept: true,
				reason: fmt.Sprintf("%s %s on %s:%d is refused: it carries the %s, and the egress rules for this host allow only some methods; send the method in the request line", method, path, host, port, what)}
		}
	}
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
		if !r.matchRequest(method, path) {
			continue
		}
		if r.Deny {
			return verdict{listed: true, intercept: v.intercept, rule: r.label,
				reason: fmt.Sprintf("%s %s on %s:%d is refused by egress rule %s", method, path, host, port, r.label)}
		}
		v.allow = true
		v.reach |= r.reach()
		v.websocket = v.websocket || r.WebSocket
		if allowedBy == "" {
			allowedBy = r.label
		}
	}
	v.rule = allowedBy
	if !v.allow && v.listed {
		v.reason = fmt.Sprintf("%s %s on %s:%d is not allowed: the egress rules for this host allow only some methods and paths", method, path, host, port)
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
