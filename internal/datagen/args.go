package datagen

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Argument checks for helpers. Each returns an error worded for the user;
// the parser adds the position, the helper's name and its accepted forms.

// maxSafeInt is JavaScript's Number.MAX_SAFE_INTEGER (2^53-1), the largest
// magnitude random.number accepts: past it, faker's numbers lose integer
// precision, and within it min + a random offset never overflows int64.
const maxSafeInt = 1<<53 - 1

// maxCount bounds counts (words, characters, digits) so one placeholder
// cannot make a record of gigabytes.
const maxCount = 1 << 16

func argc(args []any, lo, hi int) error {
	switch {
	case len(args) < lo && lo == 1:
		return errors.New("needs an argument")
	case len(args) < lo:
		return fmt.Errorf("needs %d arguments, got %d", lo, len(args))
	case len(args) > hi && hi == 0:
		return fmt.Errorf("takes no arguments, got %d", len(args))
	case len(args) > hi && hi == 1:
		return fmt.Errorf("takes at most one argument, got %d", len(args))
	case len(args) > hi:
		return fmt.Errorf("takes at most %d arguments, got %d", hi, len(args))
	}
	return nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func num(v any, what string) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s must be a number, got %s", what, typeName(v))
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%s %s is out of range", what, n)
	}
	return f, nil
}

// integer returns v as an integer in [lo, hi].
func integer(v any, what string, lo, hi int64) (int64, error) {
	f, err := num(v, what)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) {
		return 0, fmt.Errorf("%s must be a whole number, got %s", what, v.(json.Number))
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, fmt.Errorf("%s must be between %d and %d, got %s", what, lo, hi, v.(json.Number))
	}
	return int64(f), nil
}

// optCount returns args[i] as a count in [lo, hi], or def when absent.
func optCount(args []any, i int, what string, lo, hi, def int64) (int64, error) {
	if i >= len(args) {
		return def, nil
	}
	return integer(args[i], what, lo, hi)
}

func str(v any, what string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s must be a string in double quotes, got %s", what, typeName(v))
	}
	return s, nil
}

func optStr(args []any, i int, what, def string) (string, error) {
	if i >= len(args) {
		return def, nil
	}
	return str(args[i], what)
}

// array returns v as a non-empty array.
func array(v any, what string) ([]any, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a JSON array such as [\"a\",\"b\"], got %s", what, typeName(v))
	}
	if len(a) == 0 {
		return nil, fmt.Errorf("%s is an empty array: give at least one element", what)
	}
	return a, nil
}

func object(v any, what string, keys ...string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a JSON object, got %s", what, typeName(v))
	}
	for k := range m {
		known := false
		for _, want := range keys {
			if k == want {
				known = true
				break
			}
		}
		if !known {
			return nil, fmt.Errorf("%s has an unknown key %q; known keys: %s", what, k, strings.Join(keys, ", "))
		}
	}
	return m, nil
}

// date parses a reference date: RFC 3339, a date (2006-01-02, UTC), or a
// number of milliseconds since the Unix epoch, as JavaScript's Date does.
func date(v any, what string) (time.Time, error) {
	switch v := v.(type) {
	case json.Number:
		ms, err := integer(v, what, -maxSafeInt, maxSafeInt)
		if err != nil {
			return time.Time{}, err
		}
		return time.UnixMilli(ms).UTC(), nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("%s %q is not a date: use RFC 3339 (2024-05-01T10:00:00Z), 2024-05-01, or epoch milliseconds", what, v)
	}
	return time.Time{}, fmt.Errorf("%s must be a date string or epoch milliseconds, got %s", what, typeName(v))
}
