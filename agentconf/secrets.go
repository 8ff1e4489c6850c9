package agentconf

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Secret is the value of a secret the bottle is configured with
// (egress.secrets): a carried file that holds it stops the run.
type Secret struct {
	// Name says which secret it is, in words the user knows
	// (ANTHROPIC_API_KEY, or the file it is read from); never the value.
	Name  string
	Value string
}

// minSecretLen is the shortest configured value looked for: shorter values
// match ordinary text.
const minSecretLen = 8

// Finding is a secret found in a file: what it looks like and on which line
// (1-based). It never holds the value.
type Finding struct {
	Kind string
	Line int
	// match is what was found, to find it again in a file's source.
	match []byte
}

// SecretError stops a snapshot: File (as the user writes it, ~/...) holds
// a secret, so nothing is copied.
type SecretError struct {
	File string
	// Entry is the file as agent.user_config names it (~/.claude/...).
	Entry string
	Finding
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("%s:%d holds what looks like %s, so none of your agent settings were copied into the bottle "+
		"(it never carries a credential): remove it from the file (give credentials to the bottle's proxy with "+
		"egress.secrets instead), leave the file out with agent.user_config: [\"!%s\"], or run with --no-user-config",
		e.File, e.Line, e.Kind, e.Entry)
}

// tokenPattern is a recognised credential format. Loose ones (a short
// prefix and any run of key characters) must also look random, so that
// words such as "sk-learn-compatible-estimators" are not taken for keys.
type tokenPattern struct {
	kind  string
	re    *regexp.Regexp
	loose bool
}

// tokenPatterns: the most specific first, so that a key is named by its
// vendor.
var tokenPatterns = []tokenPattern{
	{"an Anthropic API key or token", regexp.MustCompile(`sk-ant-[A-Za-z0-9_-]{20,}`), true},
	{"an OpenAI-style API key (sk-...)", regexp.MustCompile(`sk-[A-Za-z0-9_-]{20,}`), true},
	{"a GitHub token", regexp.MustCompile(`gh[pousr]_[A-Za-z0-9]{30,}`), false},
	{"a GitHub token", regexp.MustCompile(`github_pat_[A-Za-z0-9_]{22,}`), false},
	{"a GitLab token", regexp.MustCompile(`glpat-[A-Za-z0-9_-]{20,}`), false},
	{"a Slack token", regexp.MustCompile(`xox[abposre]-[A-Za-z0-9-]{10,}`), true},
	{"an AWS access key ID", regexp.MustCompile(`(?:AKIA|ASIA)[A-Z0-9]{16}`), false},
	{"a Google API key", regexp.MustCompile(`AIza[A-Za-z0-9_-]{35}`), false},
	{"a Hugging Face token", regexp.MustCompile(`hf_[A-Za-z0-9]{30,}`), true},
	{"an npm token", regexp.MustCompile(`npm_[A-Za-z0-9]{36}`), false},
	{"a Stripe key", regexp.MustCompile(`[sr]k_live_[A-Za-z0-9]{20,}`), false},
	// The header alone could be documentation: a key has its body after it.
	{"a PEM private key", regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]{0,200}?[A-Za-z0-9+/]{64,}`), false},
}

// FindSecret looks in content for a credential: a value of one of the
// configured secrets, or a token in a format the plugin recognises
// (tokenPatterns). It returns the first one found, or nil.
func FindSecret(content []byte, configured []Secret) *Finding {
	for _, s := range configured {
		v := strings.TrimSpace(s.Value)
		if len(v) < minSecretLen {
			continue
		}
		if i := bytes.Index(content, []byte(v)); i >= 0 {
			return &Finding{Kind: "the value of the secret " + s.Name, Line: lineOf(content, i), match: []byte(v)}
		}
	}
	for _, p := range tokenPatterns {
		for _, m := range p.re.FindAllIndex(content, -1) {
			start, end := m[0], m[1]
			if start > 0 && isKeyByte(content[start-1]) {
				continue
			}
			if end < len(content) && isAlnum(content[end]) {
				continue
			}
			if p.loose && !looksRandom(content[start:end]) {
				continue
			}
			return &Finding{Kind: p.kind, Line: lineOf(content, start), match: content[start:end]}
		}
	}
	return nil
}

// lineIn is the line of f in src, a file that was filtered into the
// content f was found in, so that the user is pointed at their own file's
// line; the line in the content when src does not hold it as written.
func (f *Finding) lineIn(src []byte) int {
	if i := bytes.Index(src, f.match); src != nil && i >= 0 {
		return lineOf(src, i)
	}
	return f.Line
}

func lineOf(b []byte, off int) int { return bytes.Count(b[:off], []byte{'\n'}) + 1 }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isKeyByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }

// looksRandom reports whether a token has a part (between dashes and
// underscores) of at least 16 characters that mixes at least two of
// digits, lower-case and upper-case letters, as generated keys do and
// words rarely do.
func looksRandom(tok []byte) bool {
	for _, part := range bytes.FieldsFunc(tok, func(r rune) bool { return r == '-' || r == '_' }) {
		if len(part) < 16 {
			continue
		}
		var digit, lower, upper int
		for _, c := range part {
			switch {
			case c >= '0' && c <= '9':
				digit = 1
			case c >= 'a' && c <= 'z':
				lower = 1
			case c >= 'A' && c <= 'Z':
				upper = 1
			}
		}
		if digit+lower+upper >= 2 {
			return true
		}
	}
	return false
}
