package datagen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The faker.js helpers that make up people, places, companies and text:
// name, internet, address, commerce, company, finance, lorem, phone,
// hacker and helpers.*.

// names, internet, address

func appendFullName(dst []byte, r *rand.Rand, _ time.Time) []byte {
	switch r.IntN(10) {
	case 0:
		dst = append(dst, namePrefixes[r.IntN(len(namePrefixes))]...)
		dst = append(dst, ' ')
	}
	dst = append(dst, firstNames[r.IntN(len(firstNames))]...)
	dst = append(dst, ' ')
	dst = append(dst, lastNames[r.IntN(len(lastNames))]...)
	if r.IntN(10) == 0 {
		dst = append(dst, ' ')
		dst = append(dst, nameSuffixes[r.IntN(len(nameSuffixes))]...)
	}
	return dst
}

// appendUserName writes one of faker's user name patterns: First42,
// First.Last, First_Last42. Empty first or last names are picked.
func appendUserName(dst []byte, r *rand.Rand, first, last string) []byte {
	if first == "" {
		first = firstNames[r.IntN(len(firstNames))]
	}
	if last == "" {
		last = lastNames[r.IntN(len(lastNames))]
	}
	k := r.IntN(2)
	sep := "._"[k : k+1]
	switch r.IntN(3) {
	case 0:
		dst = appendNameChars(dst, first)
		dst = strconv.AppendInt(dst, r.Int64N(100), 10)
	case 1:
		dst = appendNameChars(dst, first)
		dst = append(dst, sep...)
		dst = appendNameChars(dst, last)
	default:
		dst = appendNameChars(dst, first)
		dst = append(dst, sep...)
		dst = appendNameChars(dst, last)
		dst = strconv.AppendInt(dst, r.Int64N(100), 10)
	}
	return dst
}

// appendNameChars appends s without the characters a user name or email
// cannot hold (spaces, quotes, @ and the like).
func appendNameChars(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || isIdent(c) || c == '.' || c == '-' {
			dst = append(dst, c)
		}
	}
	return dst
}

func compileUserName(args []any) (generator, error) {
	if err := argc(args, 0, 2); err != nil {
		return nil, err
	}
	first, err := optStr(args, 0, "the first name", "")
	if err != nil {
		return nil, err
	}
	last, err := optStr(args, 1, "the last name", "")
	if err != nil {
		return nil, err
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		return appendUserName(dst, r, first, last)
	}, nil
}

func compileEmail(args []any) (generator, error) {
	if err := argc(args, 0, 3); err != nil {
		return nil, err
	}
	var names [3]string
	for i, what := range []string{"the first name", "the last name", "the provider"} {
		var err error
		if names[i], err = optStr(args, i, what, ""); err != nil {
			return nil, err
		}
	}
	first, last, provider := names[0], names[1], names[2]
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		dst = appendUserName(dst, r, first, last)
		dst = append(dst, '@')
		if provider != "" {
			return append(dst, provider...)
		}
		return append(dst, emailDomains[r.IntN(len(emailDomains))]...)
	}, nil
}

func appendDomainWord(dst []byte, r *rand.Rand, _ time.Time) []byte {
	name := firstNames[r.IntN(len(firstNames))]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func appendDomainName(dst []byte, r *rand.Rand, t time.Time) []byte {
	dst = appendDomainWord(dst, r, t)
	dst = append(dst, '.')
	return append(dst, domainSuffixes[r.IntN(len(domainSuffixes))]...)
}

func appendURL(dst []byte, r *rand.Rand, t time.Time) []byte {
	if r.IntN(2) == 0 {
		dst = append(dst, "http://"...)
	} else {
		dst = append(dst, "https://"...)
	}
	return appendDomainName(dst, r, t)
}

func appendIPv4(dst []byte, r *rand.Rand, _ time.Time) []byte {
	for i := range 4 {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendInt(dst, r.Int64N(256), 10)
	}
	return dst
}

func appendIPv6(dst []byte, r *rand.Rand, _ time.Time) []byte {
	for i := range 8 {
		if i > 0 {
			dst = append(dst, ':')
		}
		v := r.Uint32()
		for s := 12; s >= 0; s -= 4 {
			dst = append(dst, hexDigits[v>>s&0xf])
		}
	}
	return dst
}

func appendMAC(dst []byte, r *rand.Rand, _ time.Time) []byte {
	for i := range 6 {
		if i > 0 {
			dst = append(dst, ':')
		}
		v := r.Uint32()
		dst = append(dst, hexDigits[v>>4&0xf], hexDigits[v&0xf])
	}
	return dst
}

func appendColor(dst []byte, r *rand.Rand, _ time.Time) []byte {
	dst = append(dst, '#')
	v := r.Uint32()
	for s := 20; s >= 0; s -= 4 {
		dst = append(dst, hexDigits[v>>s&0xf])
	}
	return dst
}

// appendSymbols replaces # with a digit, ? with a letter A-Z and, when
// star, * with either.
func appendSymbols(dst []byte, r *rand.Rand, format string, star bool) []byte {
	for i := 0; i < len(format); i++ {
		switch c := format[i]; {
		case c == '#':
			dst = append(dst, digits[r.IntN(10)])
		case c == '?':
			dst = append(dst, upper[r.IntN(26)])
		case c == '*' && star:
			if r.IntN(2) == 0 {
				dst = append(dst, digits[r.IntN(10)])
			} else {
				dst = append(dst, upper[r.IntN(26)])
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func compileZipCode(args []any) (generator, error) {
	if err := argc(args, 0, 1); err != nil {
		return nil, err
	}
	f, err := optStr(args, 0, "the format", "")
	if err != nil {
		return nil, err
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		format := f
		if format == "" {
			format = [...]string{"#####", "#####-####"}[r.IntN(2)]
		}
		return appendSymbols(dst, r, format, false)
	}, nil
}

func appendStreetName(dst []byte, r *rand.Rand, _ time.Time) []byte {
	if r.IntN(2) == 0 {
		dst = append(dst, firstNames[r.IntN(len(firstNames))]...)
	} else {
		dst = append(dst, lastNames[r.IntN(len(lastNames))]...)
	}
	dst = append(dst, ' ')
	return append(dst, streetSuffixes[r.IntN(len(streetSuffixes))]...)
}

func appendSecondaryAddress(dst []byte, r *rand.Rand, _ time.Time) []byte {
	if r.IntN(2) == 0 {
		dst = append(dst, "Apt. "...)
	} else {
		dst = append(dst, "Suite "...)
	}
	return appendSymbols(dst, r, "###", false)
}

func compileStreetAddress(args []any) (generator, error) {
	if err := argc(args, 0, 1); err != nil {
		return nil, err
	}
	full := false
	if len(args) == 1 {
		b, ok := args[0].(bool)
		if !ok {
			return nil, fmt.Errorf("the argument must be true or false, got %s", typeName(args[0]))
		}
		full = b
	}
	return func(dst []byte, r *rand.Rand, t time.Time) []byte {
		dst = appendSymbols(dst, r, [...]string{"###", "####", "#####"}[r.IntN(3)], false)
		dst = append(dst, ' ')
		dst = appendStreetName(dst, r, t)
		if full {
			dst = append(dst, ' ')
			dst = appendSecondaryAddress(dst, r, t)
		}
		return dst
	}, nil
}

// appendCoordinate is a latitude (limit 90) or longitude (180) with four
// decimals.
func appendCoordinate(limit int64) generator {
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		v := r.Int64N(2*limit*10000+1) - limit*10000
		if v < 0 {
			dst = append(dst, '-')
			v = -v
		}
		dst = strconv.AppendInt(dst, v/10000, 10)
		dst = append(dst, '.')
		return appendPad(dst, int(v%10000), 4)
	}
}

// commerce, company, finance

func appendCompanyName(dst []byte, r *rand.Rand, _ time.Time) []byte {
	last := func() string { return lastNames[r.IntN(len(lastNames))] }
	switch r.IntN(3) {
	case 0:
		dst = append(dst, last()...)
		dst = append(dst, ' ')
		dst = append(dst, companySuffixes[r.IntN(len(companySuffixes))]...)
	case 1:
		dst = append(dst, last()...)
		dst = append(dst, " - "...)
		dst = append(dst, last()...)
	default:
		dst = append(dst, last()...)
		dst = append(dst, ", "...)
		dst = append(dst, last()...)
		dst = append(dst, " and "...)
		dst = append(dst, last()...)
	}
	return dst
}

// compileAmount is commerce.price and finance.amount: (min, max, decimals,
// symbol), defaults 0, 1000, 2, "". The amount always shows its decimals
// (12.50), as faker's toFixed does.
func compileAmount(args []any) (generator, error) {
	if err := argc(args, 0, 4); err != nil {
		return nil, err
	}
	lo, hi := 0.0, 1000.0
	var err error
	if len(args) > 0 {
		if lo, err = num(args[0], "min"); err != nil {
			return nil, err
		}
	}
	if len(args) > 1 {
		if hi, err = num(args[1], "max"); err != nil {
			return nil, err
		}
	}
	dec, err := optCount(args, 2, "decimals", 0, 10, 2)
	if err != nil {
		return nil, err
	}
	symbol, err := optStr(args, 3, "the symbol", "")
	if err != nil {
		return nil, err
	}
	switch {
	case lo < 0 || hi < 0:
		return nil, fmt.Errorf("min and max must not be negative, got %s and %s", fmtNum(lo), fmtNum(hi))
	case lo > hi:
		return nil, fmt.Errorf("min %s is greater than max %s", fmtNum(lo), fmtNum(hi))
	case hi*math.Pow10(int(dec)) > maxSafeInt:
		return nil, fmt.Errorf("max %s with %d decimals is too large", fmtNum(hi), dec)
	}
	scale := math.Pow10(int(dec))
	loU, hiU := int64(math.Ceil(lo*scale)), int64(math.Floor(hi*scale))
	if loU > hiU {
		return nil, fmt.Errorf("no amount with %d decimals lies between %s and %s", dec, fmtNum(lo), fmtNum(hi))
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		dst = append(dst, symbol...)
		v := loU + r.Int64N(hiU-loU+1)
		return strconv.AppendFloat(dst, float64(v)/scale, 'f', int(dec), 64)
	}, nil
}

// lorem

func appendSentence(dst []byte, r *rand.Rand, words int64) []byte {
	for i := range words {
		w := loremWords[r.IntN(len(loremWords))]
		if i == 0 {
			dst = append(dst, w[0]-('a'-'A'))
			dst = append(dst, w[1:]...)
			continue
		}
		dst = append(dst, ' ')
		dst = append(dst, w...)
	}
	return append(dst, '.')
}

func compileSentence(args []any) (generator, error) {
	if err := argc(args, 0, 1); err != nil {
		return nil, err
	}
	n, err := optCount(args, 0, "wordCount", 1, maxCount, 0)
	if err != nil {
		return nil, err
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		k := n
		if k == 0 {
			k = 3 + r.Int64N(8)
		}
		return appendSentence(dst, r, k)
	}, nil
}

func appendSentences(dst []byte, r *rand.Rand, n int64) []byte {
	for i := range n {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = appendSentence(dst, r, 3+r.Int64N(8))
	}
	return dst
}

func compileSentences(args []any) (generator, error) {
	if err := argc(args, 0, 1); err != nil {
		return nil, err
	}
	n, err := optCount(args, 0, "count", 1, maxCount/16, 0)
	if err != nil {
		return nil, err
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		k := n
		if k == 0 {
			k = 2 + r.Int64N(5)
		}
		return appendSentences(dst, r, k)
	}, nil
}

func compileParagraph(args []any) (generator, error) {
	if err := argc(args, 0, 1); err != nil {
		return nil, err
	}
	n, err := optCount(args, 0, "sentenceCount", 1, maxCount/16, 3)
	if err != nil {
		return nil, err
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		return appendSentences(dst, r, n+r.Int64N(4))
	}, nil
}

// phone and faker's helpers.*

func compilePhone(args []any) (generator, error) {
	if err := argc(args, 0, 1); err != nil {
		return nil, err
	}
	f, err := optStr(args, 0, "the format", "")
	if err != nil {
		return nil, err
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		format := f
		if format == "" {
			format = phoneFormats[r.IntN(len(phoneFormats))]
		}
		return appendDigitsFor(dst, r, format, '#')
	}, nil
}

func compileReplaceSymbolWithNumber(args []any) (generator, error) {
	if err := argc(args, 1, 2); err != nil {
		return nil, err
	}
	s, err := str(args[0], "the text")
	if err != nil {
		return nil, err
	}
	sym, err := optStr(args, 1, "the symbol", "#")
	if err != nil {
		return nil, err
	}
	if len(sym) != 1 {
		return nil, fmt.Errorf("the symbol must be one ASCII character, got %q", sym)
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		return appendDigitsFor(dst, r, s, sym[0])
	}, nil
}

func compileReplaceSymbols(args []any) (generator, error) {
	if err := argc(args, 1, 1); err != nil {
		return nil, err
	}
	s, err := str(args[0], "the text")
	if err != nil {
		return nil, err
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		return appendSymbols(dst, r, s, true)
	}, nil
}

// compileSlugify is faker's helpers.slugify: spaces become dashes and
// characters other than letters, digits, _ . - are dropped. The result is
// fixed, so it is computed here.
func compileSlugify(args []any) (generator, error) {
	if err := argc(args, 1, 1); err != nil {
		return nil, err
	}
	s, err := str(args[0], "the text")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			b.WriteByte('-')
		case isIdent(c) && c != '$', c == '.', c == '-':
			b.WriteByte(c)
		}
	}
	return constant(b.String()), nil
}

// appendDigitsFor appends s with every sym replaced by a random digit
// (phone formats, helpers.replaceSymbolWithNumber).
func appendDigitsFor(dst []byte, r *rand.Rand, s string, sym byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == sym {
			dst = append(dst, digits[r.IntN(10)])
		} else {
			dst = append(dst, s[i])
		}
	}
	return dst
}
