package auth

import (
	"encoding/base64"
	"testing"
)

func TestEqual(t *testing.T) {
	cases := []struct {
		got, want string
		ok        bool
	}{
		{"s3cret", "s3cret", true},
		{"s3cret", "s3cre", false},
		{"", "s3cret", false},
		{"", "", false}, // an unset token never matches
		{"S3cret", "s3cret", false},
	}
	for _, c := range cases {
		if Equal(c.got, c.want) != c.ok {
			t.Errorf("Equal(%q, %q) = %v, want %v", c.got, c.want, !c.ok, c.ok)
		}
	}
}

func TestBasicPassword(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		header, pass string
		ok           bool
	}{
		{"Basic " + enc("bottle:tok"), "tok", true},
		{"basic " + enc("x:tok:with:colons"), "tok:with:colons", true},
		{"Basic " + enc("nocolon"), "", false},
		{"Bearer tok", "", false},
		{"Basic !!!", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		pass, ok := BasicPassword(c.header)
		if pass != c.pass || ok != c.ok {
			t.Errorf("BasicPassword(%q) = %q, %v; want %q, %v", c.header, pass, ok, c.pass, c.ok)
		}
	}
}

func TestBearer(t *testing.T) {
	if tok, ok := Bearer("Bearer abc"); !ok || tok != "abc" {
		t.Fatalf("Bearer: got %q %v", tok, ok)
	}
	if _, ok := Bearer("Bearer "); ok {
		t.Fatal("empty bearer accepted")
	}
	if _, ok := Bearer("Basic abc"); ok {
		t.Fatal("basic accepted as bearer")
	}
}
