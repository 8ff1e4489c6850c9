// Package conf is what the bundle's JSON configuration files share: strict
// decoding (a typo must not silently loosen a rule) and durations written as
// Go duration strings ("30s", "5m") or numbers of seconds.
package conf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Decode decodes one JSON object into a T, refusing unknown fields and
// trailing data.
func Decode[T any](b []byte) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("decoding: %w", err)
	}
	if dec.More() {
		return v, errors.New("decoding: trailing data after the JSON object")
	}
	return v, nil
}

// Checker is a configuration that checks itself once decoded.
type Checker interface{ Validate() error }

// Parse decodes b as Decode does, then has the result check itself.
func Parse[T Checker](b []byte) (T, error) {
	v, err := Decode[T](b)
	if err != nil {
		return v, err
	}
	if err := v.Validate(); err != nil {
		return v, err
	}
	return v, nil
}

// Load reads the file at path and hands it to parse; what names the file
// in errors ("proxy config").
func Load[T any](path, what string, parse func([]byte) (T, error)) (T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("reading %s: %w", what, err)
	}
	v, err := parse(b)
	if err != nil {
		return v, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return v, nil
}

// Duration is a time.Duration in JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: use a Go duration such as \"30s\" or \"5m\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s: use a string such as \"30s\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}
