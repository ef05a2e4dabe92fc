package datagen

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shardflow/shardflow/internal/editdist"
)

// helper is one template helper: its accepted forms (for errors and docs)
// and a compiler that checks the arguments once and returns the generator.
type helper struct {
	usage   string
	compile func(args []any) (generator, error)
}

// helpers is the registry of template helpers, keyed by name. It is read
// only. Names follow faker.js (and the KDG's additions: date.now, date.utc,
// random.weightedArrayElement); a few later faker names are aliases.
var helpers = map[string]helper{
	// random
	"random.number":               {`random.number, random.number(max), random.number({"min":0,"max":99999,"precision":1})`, compileNumber(1)},
	"random.float":                {`random.float, random.float(max), random.float({"min":0,"max":99999,"precision":0.01})`, compileNumber(0.01)},
	"random.arrayElement":         {`random.arrayElement(["a","b",...])`, compileArrayElement},
	"random.arrayElements":        {`random.arrayElements(["a","b",...]), random.arrayElements(["a","b",...], count)`, compileArrayElements},
	"random.weightedArrayElement": {`random.weightedArrayElement({"weights":[0.3,0.7],"data":["a","b"]})`, compileWeighted},
	"random.objectElement":        {`random.objectElement({"k":"v",...}), random.objectElement({...}, "key"), random.objectElement({...}, "value")`, compileObjectElement},
	"random.uuid":                 {`random.uuid`, fixed(appendUUID)},
	"random.boolean":              {`random.boolean`, fixed(appendBool)},
	"random.word":                 {`random.word`, fixed(pick(englishWords))},
	"random.words":                {`random.words, random.words(count)`, compileWords(englishWords, " ", 0)},
	"random.alphaNumeric":         {`random.alphaNumeric, random.alphaNumeric(count)`, compileChars(alnum, "", 1)},
	"random.hexaDecimal":          {`random.hexaDecimal, random.hexaDecimal(count)`, compileChars(hexDigits, "0x", 1)},

	// faker 5+ names for the same helpers
	"datatype.number":  {`datatype.number, datatype.number(max), datatype.number({"min":0,"max":99999,"precision":1})`, compileNumber(1)},
	"datatype.float":   {`datatype.float, datatype.float(max), datatype.float({"min":0,"max":99999,"precision":0.01})`, compileNumber(0.01)},
	"datatype.uuid":    {`datatype.uuid`, fixed(appendUUID)},
	"datatype.boolean": {`datatype.boolean`, fixed(appendBool)},
	"number.int":       {`number.int, number.int(max), number.int({"min":0,"max":99999})`, compileNumber(1)},
	"number.float":     {`number.float, number.float(max), number.float({"min":0,"max":99999,"precision":0.01})`, compileNumber(0.01)},
	"string.uuid":      {`string.uuid`, fixed(appendUUID)},

	// date
	"date.now":          {`date.now, date.now("YYYY-MM-DD HH:mm:ss")`, compileDateFormat(false)},
	"date.utc":          {`date.utc, date.utc("YYYY-MM-DD HH:mm:ss")`, compileDateFormat(true)},
	"current.timestamp": {`current.timestamp`, compileCurrentTimestamp},
	"date.past":         {`date.past, date.past(years), date.past(years, "2024-01-01")`, compileDateOffset(-1, yearMs, "years")},
	"date.future":       {`date.future, date.future(years), date.future(years, "2024-01-01")`, compileDateOffset(+1, yearMs, "years")},
	"date.recent":       {`date.recent, date.recent(days)`, compileDateOffset(-1, dayMs, "days")},
	"date.soon":         {`date.soon, date.soon(days)`, compileDateOffset(+1, dayMs, "days")},
	"date.between":      {`date.between("2024-01-01", "2024-12-31")`, compileDateBetween},
	"date.month":        {`date.month, date.month({"abbr":true})`, compileDateName(monthsWide, monthsAbbr)},
	"date.weekday":      {`date.weekday, date.weekday({"abbr":true})`, compileDateName(weekdaysWide, weekdaysAbbr)},

	// name
	"name.firstName": {`name.firstName`, fixed(pick(firstNames))},
	"name.lastName":  {`name.lastName`, fixed(pick(lastNames))},
	"name.findName":  {`name.findName`, fixed(appendFullName)},
	"name.fullName":  {`name.fullName`, fixed(appendFullName)},
	"name.prefix":    {`name.prefix`, fixed(pick(namePrefixes))},
	"name.suffix":    {`name.suffix`, fixed(pick(nameSuffixes))},
	"name.jobTitle":  {`name.jobTitle`, fixed(join3(jobDescriptors, jobAreas, jobTypes))},
	"name.title":     {`name.title`, fixed(join3(jobDescriptors, jobAreas, jobTypes))},

	// internet
	"internet.email":        {`internet.email, internet.email("first"), internet.email("first", "last"), internet.email("first", "last", "provider.com")`, compileEmail},
	"internet.exampleEmail": {`internet.exampleEmail, internet.exampleEmail("first"), internet.exampleEmail("first", "last")`, compileEmail},
	"internet.userName":     {`internet.userName, internet.userName("first"), internet.userName("first", "last")`, compileUserName},
	"internet.domainName":   {`internet.domainName`, fixed(appendDomainName)},
	"internet.domainWord":   {`internet.domainWord`, fixed(appendDomainWord)},
	"internet.domainSuffix": {`internet.domainSuffix`, fixed(pick(domainSuffixes))},
	"internet.url":          {`internet.url`, fixed(appendURL)},
	"internet.protocol":     {`internet.protocol`, fixed(pick([]string{"http", "https"}))},
	"internet.ip":           {`internet.ip`, fixed(appendIPv4)},
	"internet.ipv6":         {`internet.ipv6`, fixed(appendIPv6)},
	"internet.mac":          {`internet.mac`, fixed(appendMAC)},
	"internet.color":        {`internet.color`, fixed(appendColor)},
	"internet.userAgent":    {`internet.userAgent`, fixed(pick(userAgents))},
	"internet.password":     {`internet.password, internet.password(length)`, compileChars(alnum, "", 15)},

	// address
	"address.country":          {`address.country`, fixed(pick(countries))},
	"address.countryCode":      {`address.countryCode`, fixed(pick(countryCodes))},
	"address.city":             {`address.city`, fixed(pick(cities))},
	"address.state":            {`address.state`, fixed(pick(states))},
	"address.stateAbbr":        {`address.stateAbbr`, fixed(pick(stateAbbrs))},
	"address.zipCode":          {`address.zipCode, address.zipCode("#####-####")`, compileZipCode},
	"address.streetName":       {`address.streetName`, fixed(appendStreetName)},
	"address.streetAddress":    {`address.streetAddress, address.streetAddress(true)`, compileStreetAddress},
	"address.secondaryAddress": {`address.secondaryAddress`, fixed(appendSecondaryAddress)},
	"address.latitude":         {`address.latitude`, fixed(appendCoordinate(90))},
	"address.longitude":        {`address.longitude`, fixed(appendCoordinate(180))},

	// commerce, company, finance
	"commerce.productName":      {`commerce.productName`, fixed(join3(productAdjectives, productMaterials, products))},
	"commerce.product":          {`commerce.product`, fixed(pick(products))},
	"commerce.productAdjective": {`commerce.productAdjective`, fixed(pick(productAdjectives))},
	"commerce.productMaterial":  {`commerce.productMaterial`, fixed(pick(productMaterials))},
	"commerce.department":       {`commerce.department`, fixed(pick(departments))},
	"commerce.color":            {`commerce.color`, fixed(pick(colors))},
	"commerce.price":            {`commerce.price, commerce.price(min, max), commerce.price(min, max, decimals), commerce.price(min, max, decimals, "$")`, compileAmount},
	"company.companyName":       {`company.companyName`, fixed(appendCompanyName)},
	"company.companySuffix":     {`company.companySuffix`, fixed(pick(companySuffixes))},
	"company.catchPhrase":       {`company.catchPhrase`, fixed(join3(catchAdjectives, catchDescriptors, catchNouns))},
	"company.bs":                {`company.bs`, fixed(join3(bsVerbs, bsAdjectives, bsNouns))},
	"finance.amount":            {`finance.amount, finance.amount(min, max), finance.amount(min, max, decimals), finance.amount(min, max, decimals, "$")`, compileAmount},
	"finance.account":           {`finance.account, finance.account(length)`, compileChars(digits, "", 8)},
	"finance.currencyCode":      {`finance.currencyCode`, fixed(pick(currencyCodes))},
	"finance.transactionType":   {`finance.transactionType`, fixed(pick(transactionTypes))},

	// lorem
	"lorem.word":      {`lorem.word`, fixed(pick(loremWords))},
	"lorem.words":     {`lorem.words, lorem.words(count)`, compileWords(loremWords, " ", 3)},
	"lorem.slug":      {`lorem.slug, lorem.slug(count)`, compileWords(loremWords, "-", 3)},
	"lorem.sentence":  {`lorem.sentence, lorem.sentence(wordCount)`, compileSentence},
	"lorem.text":      {`lorem.text`, compileSentence},
	"lorem.sentences": {`lorem.sentences, lorem.sentences(count)`, compileSentences},
	"lorem.paragraph": {`lorem.paragraph, lorem.paragraph(sentenceCount)`, compileParagraph},

	// phone, hacker
	"phone.phoneNumber":   {`phone.phoneNumber, phone.phoneNumber("###-###-####")`, compilePhone},
	"hacker.abbreviation": {`hacker.abbreviation`, fixed(pick(hackerAbbreviations))},
	"hacker.adjective":    {`hacker.adjective`, fixed(pick(hackerAdjectives))},
	"hacker.noun":         {`hacker.noun`, fixed(pick(hackerNouns))},
	"hacker.verb":         {`hacker.verb`, fixed(pick(hackerVerbs))},
	"hacker.ingverb":      {`hacker.ingverb`, fixed(pick(hackerIngverbs))},

	// faker's helpers.*
	"helpers.replaceSymbolWithNumber": {`helpers.replaceSymbolWithNumber("###-##"), helpers.replaceSymbolWithNumber("%%%", "%")`, compileReplaceSymbolWithNumber},
	"helpers.replaceSymbols":          {`helpers.replaceSymbols("??-###-**")`, compileReplaceSymbols},
	"helpers.randomize":               {`helpers.randomize(["a","b",...])`, compileArrayElement},
	"helpers.shuffle":                 {`helpers.shuffle(["a","b",...])`, compileShuffle},
	"helpers.slugify":                 {`helpers.slugify("Some Text")`, compileSlugify},
}

// unsupported names faker.js (or the KDG) has but this generator does not,
// with the reason and what to use instead.
var unsupported = map[string]string{
	"date.simTime":              "the KDG's simulated time exists only in its periodic, unlocked-to-real-time mode; use date.now",
	"helpers.mustache":          "placeholders are not expanded inside other helpers' output",
	"helpers.createCard":        "objects are not rendered; compose the record from single helpers",
	"helpers.contextualCard":    "objects are not rendered; compose the record from single helpers",
	"helpers.userCard":          "objects are not rendered; compose the record from single helpers",
	"helpers.createTransaction": "objects are not rendered; compose the record from single helpers",
	"image.imageUrl":            "image URLs pointed at a retired service; use internet.url",
	"image.avatar":              "image URLs pointed at a retired service; use internet.url",
	"internet.avatar":           "avatar URLs pointed at a retired service; use internet.url",
	"random.image":              "image URLs pointed at a retired service; use internet.url",
	"random.locale":             "there is one built-in word list (English), no locales",
	"system.fileName":           "not implemented; use lorem.slug with a literal extension, e.g. {{lorem.slug(2)}}.json",
	"finance.bitcoinAddress":    "not implemented; use random.alphaNumeric(34)",
}

// HelperNames returns the names of the supported helpers, sorted.
func HelperNames() []string { return slices.Sorted(maps.Keys(helpers)) }

// suggest returns the helper most like name, or "".
func suggest(name string) string {
	method := name[strings.LastIndexByte(name, '.')+1:]
	best, bestD := "", math.MaxInt
	for _, h := range HelperNames() {
		if strings.EqualFold(h, name) {
			return h
		}
		d := editdist.Distance(strings.ToLower(name), strings.ToLower(h))
		if strings.EqualFold(h[strings.LastIndexByte(h, '.')+1:], method) {
			d = min(d, 1) // right method, wrong or missing module: {{uuid}}
		}
		if d < bestD || (d == bestD && strings.HasPrefix(h, "random.")) {
			best, bestD = h, d
		}
	}
	if editdist.Likely(name, bestD) {
		return best
	}
	return ""
}

// Generator building blocks.

func constant(s string) generator {
	return func(dst []byte, _ *rand.Rand, _ time.Time) []byte { return append(dst, s...) }
}

// fixed is a helper that takes no arguments.
func fixed(g generator) func([]any) (generator, error) {
	return func(args []any) (generator, error) {
		if err := argc(args, 0, 0); err != nil {
			return nil, err
		}
		return g, nil
	}
}

func pick(list []string) generator {
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		return append(dst, list[r.IntN(len(list))]...)
	}
}

func join3(a, b, c []string) generator {
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		dst = append(dst, a[r.IntN(len(a))]...)
		dst = append(dst, ' ')
		dst = append(dst, b[r.IntN(len(b))]...)
		dst = append(dst, ' ')
		return append(dst, c[r.IntN(len(c))]...)
	}
}

const (
	alnum     = "abcdefghijklmnopqrstuvwxyz0123456789"
	hexDigits = "0123456789abcdef"
	digits    = "0123456789"
	upper     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// compileChars is a helper taking an optional count of characters from set.
func compileChars(set, prefix string, def int64) func([]any) (generator, error) {
	return func(args []any) (generator, error) {
		if err := argc(args, 0, 1); err != nil {
			return nil, err
		}
		n, err := optCount(args, 0, "count", 0, maxCount, def)
		if err != nil {
			return nil, err
		}
		return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
			dst = append(dst, prefix...)
			for range n {
				dst = append(dst, set[r.IntN(len(set))])
			}
			return dst
		}, nil
	}
}

// random.number and friends

func compileNumber(defPrecision float64) func([]any) (generator, error) {
	return func(args []any) (generator, error) {
		if err := argc(args, 0, 1); err != nil {
			return nil, err
		}
		lo, hi, prec := 0.0, 99999.0, defPrecision
		var err error
		if len(args) == 1 {
			switch a := args[0].(type) {
			case json.Number:
				if hi, err = num(a, "max"); err != nil {
					return nil, err
				}
			case map[string]any:
				m, err := object(a, "the options", "min", "max", "precision")
				if err != nil {
					return nil, err
				}
				for _, f := range []struct {
					key string
					dst *float64
				}{{"min", &lo}, {"max", &hi}, {"precision", &prec}} {
					if v, ok := m[f.key]; ok {
						if *f.dst, err = num(v, f.key); err != nil {
							return nil, err
						}
					}
				}
			default:
				return nil, fmt.Errorf("the argument must be a number (the max) or an object such as {\"min\":1,\"max\":10}, got %s", typeName(a))
			}
		}
		return numberGen(lo, hi, prec)
	}
}

func numberGen(lo, hi, prec float64) (generator, error) {
	switch {
	case math.Abs(lo) > maxSafeInt || math.Abs(hi) > maxSafeInt:
		return nil, fmt.Errorf("min and max must be between -%d and %d", int64(maxSafeInt), int64(maxSafeInt))
	case lo > hi:
		return nil, fmt.Errorf("min %s is greater than max %s", fmtNum(lo), fmtNum(hi))
	case prec <= 0:
		return nil, fmt.Errorf("precision must be greater than 0, got %s", fmtNum(prec))
	}
	if prec == 1 && lo == math.Trunc(lo) && hi == math.Trunc(hi) {
		base, n := int64(lo), int64(hi)-int64(lo)+1
		return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
			return strconv.AppendInt(dst, base+r.Int64N(n), 10)
		}, nil
	}
	steps := math.Floor((hi-lo)/prec + 1e-9)
	if steps >= maxSafeInt {
		return nil, fmt.Errorf("precision %s is too fine for the range %s to %s", fmtNum(prec), fmtNum(lo), fmtNum(hi))
	}
	n := int64(steps) + 1
	decimals := max(decimalsOf(prec), decimalsOf(lo))
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		return appendDecimal(dst, lo+float64(r.Int64N(n))*prec, decimals)
	}, nil
}

// decimalsOf is the number of decimals of f's shortest form, at most 15.
func decimalsOf(f float64) int {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return min(len(s)-i-1, 15)
	}
	return 0
}

// appendDecimal appends f rounded to decimals places without trailing
// zeros, as JavaScript prints numbers (12.5, not 12.50).
func appendDecimal(dst []byte, f float64, decimals int) []byte {
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', decimals, 64)
	if decimals > 0 {
		for dst[len(dst)-1] == '0' {
			dst = dst[:len(dst)-1]
		}
		if dst[len(dst)-1] == '.' {
			dst = dst[:len(dst)-1]
		}
	}
	if string(dst[start:]) == "-0" {
		dst = append(dst[:start], '0')
	}
	return dst
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// random.arrayElement and friends

func renderAll(a []any) []string {
	out := make([]string, len(a))
	for i, v := range a {
		out[i] = render(v)
	}
	return out
}

func compileArrayElement(args []any) (generator, error) {
	if err := argc(args, 1, 1); err != nil {
		return nil, err
	}
	a, err := array(args[0], "the argument")
	if err != nil {
		return nil, err
	}
	return pick(renderAll(a)), nil
}

func compileArrayElements(args []any) (generator, error) {
	if err := argc(args, 1, 2); err != nil {
		return nil, err
	}
	a, err := array(args[0], "the first argument")
	if err != nil {
		return nil, err
	}
	vals := renderAll(a)
	count, err := optCount(args, 1, "count", 0, int64(len(vals)), -1)
	if err != nil {
		return nil, err
	}
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		k := int(count)
		if k < 0 {
			k = 1 + r.IntN(len(vals))
		}
		return appendShuffled(dst, vals, k, r)
	}, nil
}

// appendShuffled appends k distinct elements of vals in random order,
// joined with commas (a partial Fisher-Yates shuffle).
func appendShuffled(dst []byte, vals []string, k int, r *rand.Rand) []byte {
	var small [32]int
	idx := small[:0]
	if len(vals) > len(small) {
		idx = make([]int, 0, len(vals))
	}
	for i := range vals {
		idx = append(idx, i)
	}
	for i := range k {
		j := i + r.IntN(len(idx)-i)
		idx[i], idx[j] = idx[j], idx[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, vals[idx[i]]...)
	}
	return dst
}

func compileShuffle(args []any) (generator, error) {
	if err := argc(args, 1, 1); err != nil {
		return nil, err
	}
	a, err := array(args[0], "the argument")
	if err != nil {
		return nil, err
	}
	vals := renderAll(a)
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		return appendShuffled(dst, vals, len(vals), r)
	}, nil
}

func compileWeighted(args []any) (generator, error) {
	if err := argc(args, 1, 1); err != nil {
		return nil, err
	}
	m, err := object(args[0], "the argument", "weights", "data")
	if err != nil {
		return nil, err
	}
	if m["weights"] == nil || m["data"] == nil {
		return nil, errors.New(`the argument needs both "weights" and "data" arrays`)
	}
	ws, err := array(m["weights"], `"weights"`)
	if err != nil {
		return nil, err
	}
	data, err := array(m["data"], `"data"`)
	if err != nil {
		return nil, err
	}
	if len(ws) != len(data) {
		return nil, fmt.Errorf(`"weights" has %d elements and "data" %d: they must be the same length`, len(ws), len(data))
	}
	cum := make([]float64, len(ws))
	total := 0.0
	for i, w := range ws {
		f, err := num(w, fmt.Sprintf("weight %d", i+1))
		if err != nil {
			return nil, err
		}
		if f < 0 {
			return nil, fmt.Errorf("weight %d is negative (%s)", i+1, fmtNum(f))
		}
		total += f
		cum[i] = total
	}
	if total <= 0 {
		return nil, errors.New("the weights add up to 0: at least one must be positive")
	}
	vals := renderAll(data)
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		x := r.Float64() * total
		i := sort.Search(len(cum), func(i int) bool { return cum[i] > x })
		return append(dst, vals[min(i, len(vals)-1)]...)
	}, nil
}

func compileObjectElement(args []any) (generator, error) {
	if err := argc(args, 1, 2); err != nil {
		return nil, err
	}
	m, ok := args[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the first argument must be a JSON object, got %s", typeName(args[0]))
	}
	if len(m) == 0 {
		return nil, errors.New("the object is empty: give at least one key")
	}
	field, err := optStr(args, 1, "the second argument", "value")
	if err != nil {
		return nil, err
	}
	keys := slices.Sorted(maps.Keys(m))
	var vals []string
	switch field {
	case "key":
		vals = keys
	case "value":
		for _, k := range keys {
			vals = append(vals, render(m[k]))
		}
	default:
		return nil, fmt.Errorf(`the second argument must be "key" or "value", got %q`, field)
	}
	return pick(vals), nil
}

func appendUUID(dst []byte, r *rand.Rand, _ time.Time) []byte {
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

func appendBool(dst []byte, r *rand.Rand, _ time.Time) []byte {
	if r.IntN(2) == 1 {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// compileWords is count words from list joined by sep; def < 1 means a
// random count from 1 to 3 (faker's random.words).
func compileWords(list []string, sep string, def int64) func([]any) (generator, error) {
	return func(args []any) (generator, error) {
		if err := argc(args, 0, 1); err != nil {
			return nil, err
		}
		n, err := optCount(args, 0, "count", 0, maxCount, def)
		if err != nil {
			return nil, err
		}
		return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
			k := n
			if k < 1 && len(args) == 0 {
				k = 1 + r.Int64N(3)
			}
			for i := range k {
				if i > 0 {
					dst = append(dst, sep...)
				}
				dst = append(dst, list[r.IntN(len(list))]...)
			}
			return dst
		}, nil
	}
}
