package checkpoint

import (
	"fmt"
	"strings"
)

// CheckName reports whether name is a valid object name: slash-separated
// segments of [A-Za-z0-9._-], none empty, "." or "..". Every store uses
// these rules, so a checkpoint that works in one store works in all: each
// name is a plain relative path on every file system and a valid S3 key,
// and characters such as '#' stay free for a store's temporary files.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("invalid checkpoint object name %q: empty", name)
	}
	return checkPath(name)
}

// CheckDir is CheckName for the dir argument of List, where "" (the top
// level) is allowed.
func CheckDir(dir string) error {
	if dir == "" {
		return nil
	}
	return checkPath(dir)
}

func checkPath(name string) error {
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("invalid checkpoint object name %q: absolute paths are not allowed", name)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if why := checkSegment(seg); why != "" {
			return fmt.Errorf("invalid checkpoint object name %q: %s", name, why)
		}
	}
	return nil
}

// checkSegment returns why seg is not a valid name segment, or "".
func checkSegment(seg string) string {
	switch seg {
	case "":
		return "empty path segment"
	case ".", "..":
		return fmt.Sprintf("path segment %q is not allowed", seg)
	}
	for _, r := range seg {
		if r >= 0x80 || !nameByte(byte(r)) {
			return fmt.Sprintf("character %q is not allowed (segments use [A-Za-z0-9._-])", r)
		}
	}
	return ""
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}
