package spec

import (
	"strings"
	"testing"
)

func TestWarningsWildcardOverSharedHosting(t *testing.T) {
	warn := []string{
		"*.githubusercontent.com", "*.s3.amazonaws.com", "*.blob.core.windows.net", "*.cloudfront.net",
		"*.herokuapp.com", "*.vercel.app", "*.pages.dev", "*.appspot.com", "*.azurewebsites.net", "*.web.app",
		"*.firebaseapp.com", "*.github.io", "*.workers.dev", "*.GitHub.IO.",
		"*.s3.eu-west-1.amazonaws.com", "*.s3-us-west-2.amazonaws.com", "*.amazonaws.com",
		"*.windows.net", "*.core.windows.net", "*.dev", "*.com",
	}
	quiet := []string{
		"raw.githubusercontent.com", "objects.githubusercontent.com", "api.github.com", "*.github.com",
		"*.anthropic.com", "*.mybucket.s3.amazonaws.com", "*.example.com", "github.io", "*.npmjs.org",
	}
	s := &Spec{}
	for _, h := range append(append([]string{}, warn...), quiet...) {
		s.Egress.Allow = append(s.Egress.Allow, Rule{Host: h})
	}
	// Deny rules never warn.
	s.Egress.Deny = []Rule{{Host: "*.githubusercontent.com"}}
	ws := s.Warnings()
	if len(ws) != len(warn) {
		t.Errorf("%d warnings for %d shared-hosting wildcards:\n%s", len(ws), len(warn), strings.Join(ws, "\n"))
	}
	for i, w := range ws {
		if i >= len(warn) {
			break
		}
		if !strings.HasPrefix(w, "$.egress.allow[") || !strings.Contains(w, warn[i]+" lets the agent reach") || !strings.Contains(w, "anyone can host") {
			t.Errorf("warning %d = %q, want one about %s", i, w, warn[i])
		}
	}
	if !strings.Contains(ws[0], "(GitHub user content)") || !strings.Contains(ws[len(warn)-4], "Azure") {
		t.Errorf("warnings do not say what is hosted there: %q, %q", ws[0], ws[len(warn)-4])
	}
	if (&Spec{}).Warnings() != nil {
		t.Error("an empty spec warns")
	}
}
