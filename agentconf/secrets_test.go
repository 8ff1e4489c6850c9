package agentconf

import (
	"strings"
	"testing"
)

func TestFindSecretFormats(t *testing.T) {
	found := map[string]string{
		"anthropic key":   "key=" + apiKey,
		"oauth token":     `"accessToken": "` + oauthToken + `"`,
		"openai project":  "OPENAI_API_KEY=" + openAIKey,
		"openai legacy":   "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6",
		"github classic":  githubToken,
		"github oauth":    "gho_16C7e42F292c6912E7710c838347Ae178B4a",
		"github fine":     "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRS",
		"gitlab":          "glpat-xR4nD0mT0k3nV4lu3zzz",
		"slack bot":       "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
		"slack legacy":    "xoxp-1234567890-1234567890-1234567890-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
		"aws":             "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
		"aws session":     "ASIAY34FZKBOKMUTVV7A",
		"google":          "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
		"hugging face":    "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
		"npm":             "//registry.npmjs.org/:_authToken=npm_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c",
		"stripe":          "sk_live_51HAbCdEfGhIjKlMnOpQrStUv",
		"pem rsa":         "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpF\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpFb\n",
		"pem encrypted":   "-----BEGIN ENCRYPTED PRIVATE KEY-----\r\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQIaBcDeFgHiJkCAggAMAwGCCqGSIb3DQIJBQAwFAYIKoZIhvcNAwcE\r\n",
		"at line start":   "\n\n" + githubToken,
		"quoted":          `"` + githubToken + `"`,
		"after equals":    "TOKEN=" + githubToken + ";",
		"in a url":        "https://x:" + githubToken + "@github.com/",
		"bearer":          "Authorization: Bearer " + openAIKey,
		"end of file":     "a " + apiKey,
		"tab before":      "\t" + apiKey,
		"yaml value":      "token: " + githubToken + "\n",
		"json escape end": `"` + apiKey + `\n"`,
	}
	for name, text := range found {
		if FindSecret([]byte(text), nil) == nil {
			t.Errorf("%s not found in %q", name, text)
		}
	}
	notFound := map[string]string{
		"placeholder":        "ANTHROPIC_API_KEY=sk-ant-api03-bottle-placeholder-the-proxy-adds-the-key",
		"oauth placeholder":  "sk-ant-oat01-bottle-placeholder-the-proxy-adds-the-token",
		"openai placeholder": "sk-bottle-placeholder-the-proxy-adds-the-key",
		"words after sk":     "pip install sk-learn-compatible-estimators-and-transformers",
		"inside a word":      "the task-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6 id",
		"prefix in a word":   "myghp_R8t2Yv6Bn4Mq9Wx1Zc7Lk3Hj5Gf0Ds8Ap2Q",
		"too short":          "ghp_short and AKIA1234",
		"longer uppercase":   "AKIAIOSFODNN7EXAMPLEANDMORE",
		"pem header only":    "Never commit a -----BEGIN RSA PRIVATE KEY----- block.",
		"pem public":         "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0\n",
		"slack words":        "xoxb-the-bot-token-goes-here",
		"markdown":           "# Review\nUse `gh pr view` and check the sk- prefix of keys.\n",
		"configured short":   "abc",
	}
	for name, text := range notFound {
		if f := FindSecret([]byte(text), []Secret{{Name: "S", Value: "abc"}}); f != nil {
			t.Errorf("%s: %q taken for %s", name, text, f.Kind)
		}
	}
}

func TestFindSecretConfiguredValue(t *testing.T) {
	secrets := []Secret{{Name: "CORP_TOKEN", Value: "  plain-looking-corp-value\n"}}
	f := FindSecret([]byte("a\nb\nuse plain-looking-corp-value here\n"), secrets)
	if f == nil || f.Line != 3 || !strings.Contains(f.Kind, "CORP_TOKEN") {
		t.Errorf("configured value: %+v", f)
	}
	if f := FindSecret([]byte("nothing"), []Secret{{Name: "EMPTY", Value: "   "}}); f != nil {
		t.Errorf("an empty secret matched: %+v", f)
	}
}

func TestCredentialName(t *testing.T) {
	for _, n := range []string{"ANTHROPIC_API_KEY", "apiKey", "bearerToken", "experimental_bearer_token", "client-secret",
		"GITHUB_PERSONAL_ACCESS_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_BEARER_TOKEN_BEDROCK", "password", "x-api-key", "key", "accessToken", "Cookie", "Authorization", "Proxy-Authorization", "x-auth-token", "api-key"} {
		if !credentialName(n) {
			t.Errorf("%s not taken for a credential", n)
		}
	}
	for _, n := range []string{"env_key", "bearer_token_env_var", "model_auto_compact_token_limit", "MAX_THINKING_TOKENS",
		"CLAUDE_CODE_MAX_OUTPUT_TOKENS", "apiKeyHelper", "hotkey", "model", "command", "url", "LOG", "keybindings", "token_file"} {
		if credentialName(n) {
			t.Errorf("%s taken for a credential", n)
		}
	}
}
