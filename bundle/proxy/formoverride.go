package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
)

// maxFormPeek bounds the form body the proxy reads ahead on a host with
// method rules to look for a _method override (formOverride).
const maxFormPeek = 1 << 20

// formBody reports whether servers that honour a _method body parameter
// (Rack, Symfony and Laravel, express's method-override) would read req's
// body as a form: a POST whose Content-Type is a form, or none at all
// (Rack reads such a POST as a form too), or unparsable.
func formBody(req *http.Request) bool {
	if req.Method != http.MethodPost || req.Body == nil || req.Body == http.NoBody {
		return false
	}
	ct := req.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err != nil || mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// errFormTooLarge: a form body beyond maxFormPeek, which the proxy does not
// check and so refuses.
var errFormTooLarge = errors.New("form body too large")

// peekFormOverride reads up to maxFormPeek bytes of a form body from r and
// returns them (to be sent on before the rest of r) and what in them could
// override the request's method, or "". It fails with errFormTooLarge for a
// longer body, or with r's error.
func peekFormOverride(r io.Reader, contentType string) ([]byte, string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFormPeek+1))
	if err != nil {
		return b, "", err
	}
	if len(b) > maxFormPeek {
		return b, "", errFormTooLarge
	}
	return b, formOverride(b, contentType), nil
}

// formOverride names a _method field of form body b, or returns "". It
// errs on the side of finding one: a key that only starts with _method
// (_method[], _method_x) counts, and a multipart body it cannot parse counts
// if it holds "_method" anywhere.
func formOverride(b []byte, contentType string) string {
	isOverride := func(k string) bool { return strings.HasPrefix(strings.ToLower(strings.TrimSpace(k)), "_method") }
	mt, params, _ := mime.ParseMediaType(contentType)
	if mt == "multipart/form-data" {
		mr := multipart.NewReader(bytes.NewReader(b), params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return ""
			}
			if err != nil || params["boundary"] == "" {
				if bytes.Contains(bytes.ToLower(b), []byte("_method")) {
					return "form field _method (in a multipart body the proxy cannot parse)"
				}
				return ""
			}
			if name := part.FormName(); isOverride(name) {
				return "form field " + name
			}
		}
	}
	for field := range strings.FieldsFuncSeq(string(b), func(r rune) bool { return r == '&' || r == ';' }) {
		k, _, _ := strings.Cut(field, "=")
		if k = lenientUnescape(k); isOverride(k) {
			return fmt.Sprintf("form field %q", k)
		}
	}
	return ""
}

// lenientUnescape decodes + and the valid %XX escapes of s and keeps the
// rest as it is, as lenient form parsers (PHP's) do.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
