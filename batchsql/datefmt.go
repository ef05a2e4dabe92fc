package batchsql

import (
	"fmt"
	"strings"
)

// javaPatterns maps Spark's (java.time) datetime pattern letters, by run
// length, to DuckDB strftime specifiers. Longer runs use the entry of the
// longest run listed.
var javaPatterns = map[byte][]string{
	'y': {1: "%Y", 2: "%y", 3: "%Y", 4: "%Y"},
	'M': {1: "%-m", 2: "%m", 3: "%b", 4: "%B"},
	'L': {1: "%-m", 2: "%m", 3: "%b", 4: "%B"},
	'd': {1: "%-d", 2: "%d"},
	'D': {1: "%-j", 2: "%j", 3: "%j"},
	'H': {1: "%-H", 2: "%H"},
	'h': {1: "%-I", 2: "%I"},
	'm': {1: "%-M", 2: "%M"},
	's': {1: "%-S", 2: "%S"},
	'a': {1: "%p"},
	'E': {1: "%a", 2: "%a", 3: "%a", 4: "%A"},
	'Z': {1: "%z", 2: "%z", 3: "%z"},
	'X': {1: "%z", 2: "%z", 3: "%z"},
	'x': {1: "%z", 2: "%z", 3: "%z"},
}

// javaToStrftime converts a Spark date_format pattern ('yyyy-MM-dd
// HH:mm:ss', quoted text in '...', ” for a quote) to DuckDB's strftime
// format. Fractions of a second: S..SSS give milliseconds (%g), SSSS..SSSSSS
// microseconds (%f), longer nanoseconds (%n).
func javaToStrftime(pat string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(pat); {
		c := pat[i]
		switch {
		case c == '\'':
			if i+1 < len(pat) && pat[i+1] == '\'' {
				sb.WriteByte('\'')
				i += 2
				continue
			}
			j := i + 1
			for ; j < len(pat); j++ {
				if pat[j] == '\'' {
					if j+1 < len(pat) && pat[j+1] == '\'' {
						sb.WriteByte('\'')
						j++
						continue
					}
					break
				}
				writeLiteral(&sb, pat[j])
			}
			if j >= len(pat) {
				return "", fmt.Errorf("pattern %q: unterminated quoted text", pat)
			}
			i = j + 1
			continue
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			n := 1
			for i+n < len(pat) && pat[i+n] == c {
				n++
			}
			i += n
			if c == 'S' {
				switch {
				case n <= 3:
					sb.WriteString("%g")
				case n <= 6:
					sb.WriteString("%f")
				default:
					sb.WriteString("%n")
				}
				continue
			}
			forms, ok := javaPatterns[c]
			if !ok {
				return "", fmt.Errorf("pattern %q: letter %q is not supported (supported: y M d D H h m s S a E Z X x and 'quoted text')", pat, string(c))
			}
			f := forms[min(n, len(forms)-1)]
			for f == "" && n > 1 { // a run length with no entry: use a shorter one
				n--
				f = forms[min(n, len(forms)-1)]
			}
			sb.WriteString(f)
			continue
		default:
			writeLiteral(&sb, c)
			i++
		}
	}
	return sb.String(), nil
}

func writeLiteral(sb *strings.Builder, c byte) {
	if c == '%' {
		sb.WriteString("%%")
		return
	}
	sb.WriteByte(c)
}
