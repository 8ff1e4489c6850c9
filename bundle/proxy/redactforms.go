package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf16"
)

// An upstream that echoes a secret may echo it encoded: inside a JSON
// string, in a URL (a redirect's Location, a query it reflects), in hex, or
// in base64 (a token or an Authorization header it decodes and re-encodes).
// The redactor replaces those forms too. Each form of a value is replaced by
// the same form of its replacement, so a JSON body stays JSON and the agent
// that decodes it reads its placeholder (or the marker) back.
//
// The forms are fixed strings, matched like the value itself: the stream
// holds back only the longest form's length. What they do not cover: other
// encoders' escape sets (an encoder that escapes some characters and not
// others in a way none of these does), double encodings, a value encrypted
// or hashed, and the first and last one or two bytes of a value that is base64
// encoded inside a larger input (see base64Cores).

// minEncodedLen is the shortest value whose encoded forms are redacted: the
// forms of a shorter one (the hex of "ab" is "6162") would mangle unrelated
// data, and such a value is no secret worth the name. The value itself is
// redacted whatever its length.
const minEncodedLen = 8

// encodedForm turns a value (or its replacement) into one of its forms.
type encodedForm func(string) string

// valueForms are the forms of a bare value.
var valueForms = []encodedForm{
	// JSON strings, as common encoders write them.
	jsonGo, jsonNoHTML,
	func(s string) string { return strings.ReplaceAll(jsonNoHTML(s), "/", `\/`) },
	func(s string) string { return strings.ReplaceAll(jsonGo(s), "/", `\/`) },
	func(s string) string { return strings.ReplaceAll(jsonNoHTML(s), "/", `\u002f`) },
	jsonDotNet,
	func(s string) string { return jsonAllEscaped(s, "%04x") },
	func(s string) string { return jsonAllEscaped(s, "%04X") },
	// URL encodings, with upper and lower case hex digits.
	url.QueryEscape, url.PathEscape,
	func(s string) string { return lowerPercent(url.QueryEscape(s)) },
	func(s string) string { return lowerPercent(url.PathEscape(s)) },
	// hex
	func(s string) string { return hex.EncodeToString([]byte(s)) },
	func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) },
}

// base64Encodings are the alphabets and paddings a value's base64 may take.
var base64Encodings = []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}

// forms returns each distinct form of s's value and the same form of repl,
// not counting the value itself: see valueForms, plus base64 of the value
// and of the header value the proxy sends (Format filled in, and the part
// after an auth scheme such as "Basic "), and base64Cores.
func secretForms(s secret, repl string) (forms [][2]string) {
	if len(s.value) < minEncodedLen {
		return nil
	}
	for _, f := range valueForms {
		forms = append(forms, [2]string{f(s.value), f(repl)})
	}
	plain := []func(string) string{func(v string) string { return v }}
	if s.Format != "" {
		format := func(v string) string { return strings.ReplaceAll(s.Format, "{value}", v) }
		plain = append(plain, format)
		if scheme, _, ok := strings.Cut(s.Format, " "); ok && !strings.Contains(scheme, "{value}") {
			plain = append(plain, func(v string) string { return strings.TrimPrefix(format(v), scheme+" ") })
		}
	}
	for _, p := range plain {
		for _, enc := range base64Encodings {
			forms = append(forms, [2]string{enc.EncodeToString([]byte(p(s.value))), enc.EncodeToString([]byte(p(repl)))})
		}
	}
	for _, enc := range base64Encodings[:2] {
		for skip := range 3 {
			v, r := base64Core(enc, s.value, skip), base64Core(enc, repl, skip)
			if len(v) >= minEncodedLen {
				forms = append(forms, [2]string{v, r})
			}
		}
	}
	return forms
}

// base64Core is the part of the base64 of a larger input that holds only
// bytes of s, where s starts skip bytes into a 3-byte group: whatever comes
// before and after s, its base64 contains this string. The one or two
// characters either side also depend on the bytes around s, so they are
// not matched: up to two bytes at each end of a value pass that way.
func base64Core(enc *base64.Encoding, s string, skip int) string {
	if skip >= len(s) {
		return ""
	}
	s = s[skip:]
	s = s[:len(s)/3*3]
	return enc.WithPadding(base64.NoPadding).EncodeToString([]byte(s))
}

// jsonGo is s in a JSON string as encoding/json writes it (HTML characters
// escaped), without the quotes.
func jsonGo(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// jsonNoHTML is s in a JSON string without HTML escaping (most encoders).
func jsonNoHTML(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(out[1 : len(out)-1])
}

// jsonDotNet is s as .NET's System.Text.Json writes it by default: HTML
// and other sensitive characters and all non-ASCII as \uXXXX, upper case.
func jsonDotNet(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r >= 0x7f || strings.ContainsRune("\"&'+<>`", r):
			writeUEscapes(&b, r, "%04X")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// jsonAllEscaped is s with every character but ASCII letters and digits as
// \uXXXX (hex digits in format's case), as some encoders write "safe" JSON.
func jsonAllEscaped(s, format string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
			continue
		}
		writeUEscapes(&b, r, format)
	}
	return b.String()
}

func writeUEscapes(b *strings.Builder, r rune, format string) {
	if r > 0xffff {
		r1, r2 := utf16.EncodeRune(r)
		fmt.Fprintf(b, `\u`+format+`\u`+format, r1, r2)
		return
	}
	fmt.Fprintf(b, `\u`+format, r)
}

// lowerPercent writes the hex digits of s's %XX escapes in lower case.
func lowerPercent(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = bytes.ToLower(b[i+1 : i+2])[0], bytes.ToLower(b[i+2 : i+3])[0]
			i += 2
		}
	}
	return string(b)
}
