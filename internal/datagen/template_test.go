package datagen

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testNow is the time records render in these tests: Sunday 14 February
// 2010, 15:25:50.123456789 at UTC-7, the example of moment's docs.
var testNow = time.Date(2010, 2, 14, 15, 25, 50, 123456789, time.FixedZone("", -7*3600))

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func render1(t *testing.T, tmpl string, seed uint64) string {
	t.Helper()
	tp, err := Parse(tmpl)
	if err != nil {
		t.Fatalf("Parse(%q): %v", tmpl, err)
	}
	return string(tp.Execute(nil, seeded(seed), testNow))
}

// helperCases has, for every helper, a template using it and the regular
// expression every rendering must match. TestHelperShapes fails when a
// registered helper has no case here.
var helperCases = []struct {
	tmpl string
	re   string
}{
	{`{{random.number}}`, `^\d{1,5}$`},
	{`{{random.number(10)}}`, `^(\d|10)$`},
	{`{{random.number({"min":-5,"max":5})}}`, `^-?[0-5]$`},
	{`{{random.number({"min":1,"max":2,"precision":0.25})}}`, `^(1|1\.25|1\.5|1\.75|2)$`},
	{`{{random.float}}`, `^\d{1,5}(\.\d{1,2})?$`},
	{`{{random.float({"min":0,"max":1})}}`, `^(0|1|0\.\d{1,2})$`},
	{`{{random.arrayElement(["OK","WARN","FAIL"])}}`, `^(OK|WARN|FAIL)$`},
	{`{{random.arrayElement([1, 2.50, true, null, {"b":1,"a":[2]}])}}`, `^(1|2\.50|true|null|\{"b":1,"a":\[2\]\}|\{"a":\[2\],"b":1\})$`},
	{`{{random.arrayElements(["a","b","c"])}}`, `^[abc](,[abc]){0,2}$`},
	{`{{random.arrayElements(["a","b","c"], 2)}}`, `^[abc],[abc]$`},
	{`{{random.weightedArrayElement({"weights":[0.3,0.2,0.5],"data":["cat","fish","dog"]})}}`, `^(cat|fish|dog)$`},
	{`{{random.objectElement({"x":1,"y":"two"})}}`, `^(1|two)$`},
	{`{{random.objectElement({"x":1,"y":"two"}, "key")}}`, `^(x|y)$`},
	{`{{random.uuid}}`, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`},
	{`{{random.boolean}}`, `^(true|false)$`},
	{`{{random.word}}`, `^[a-z]+$`},
	{`{{random.words}}`, `^[a-z]+( [a-z]+){0,2}$`},
	{`{{random.words(4)}}`, `^[a-z]+( [a-z]+){3}$`},
	{`{{random.alphaNumeric(8)}}`, `^[a-z0-9]{8}$`},
	{`{{random.hexaDecimal(4)}}`, `^0x[0-9a-f]{4}$`},
	{`{{datatype.number({"max":3})}}`, `^[0-3]$`},
	{`{{datatype.float({"min":1,"max":2})}}`, `^(1|2|1\.\d{1,2})$`},
	{`{{datatype.uuid}}`, `^[0-9a-f-]{36}$`},
	{`{{datatype.boolean}}`, `^(true|false)$`},
	{`{{number.int({"min":7,"max":8})}}`, `^[78]$`},
	{`{{number.float(1)}}`, `^(0|1|0\.\d{1,2})$`},
	{`{{string.uuid}}`, `^[0-9a-f-]{36}$`},
	{`{{date.now}}`, `^2010-02-14T15:25:50-07:00$`},
	{`{{date.now("YYYY-MM-DD HH:mm:ss")}}`, `^2010-02-14 15:25:50$`},
	{`{{date.utc}}`, `^2010-02-14T22:25:50Z$`},
	{`{{date.utc("x")}}`, `^1266186350123$`},
	{`{{current.timestamp}}`, `^2010-02-14T15:25:50-07:00$`},
	{`{{date.past}}`, `^20(09|10)-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`},
	{`{{date.past(10, "2024-01-01")}}`, `^20(1[4-9]|2[0-3])-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`},
	{`{{date.future(1)}}`, `^201[01]-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`},
	{`{{date.recent}}`, `^2010-02-1[34]T\d\d:\d\d:\d\d\.\d{3}Z$`},
	{`{{date.soon(2)}}`, `^2010-02-1[4-7]T\d\d:\d\d:\d\d\.\d{3}Z$`},
	{`{{date.between("2024-01-01", "2024-01-31T23:59:59Z")}}`, `^2024-01-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`},
	{`{{date.month}}`, `^[A-Z][a-z]+$`},
	{`{{date.weekday({"abbr":true})}}`, `^(Sun|Mon|Tue|Wed|Thu|Fri|Sat)$`},
	{`{{name.firstName}}`, `^[A-Z][a-z]+$`},
	{`{{name.lastName}}`, `^[A-Z][a-z]+$`},
	{`{{name.findName}}`, `^([A-Z][a-z]*\.? )?[A-Z][a-z]+ [A-Z][a-z]+( [A-Z][A-Za-z.]*)?$`},
	{`{{name.fullName}}`, `^([A-Z][a-z]*\.? )?[A-Z][a-z]+ [A-Z][a-z]+( [A-Z][A-Za-z.]*)?$`},
	{`{{name.prefix}}`, `^[A-Z][a-z]+\.?$`},
	{`{{name.suffix}}`, `^[A-Z][A-Za-z.]*$`},
	{`{{name.jobTitle}}`, `^[A-Z][a-z]+ [A-Z][a-z]+ [A-Z][a-z]+$`},
	{`{{name.title}}`, `^[A-Z][a-z]+ [A-Z][a-z]+ [A-Z][a-z]+$`},
	{`{{internet.email}}`, `^[A-Za-z]+([._][A-Za-z]+)?\d{0,2}@example\.(com|net|org)$`},
	{`{{internet.email("Ann", "Lee", "corp.test")}}`, `^Ann(\d{1,2}|[._]Lee\d{0,2})@corp\.test$`},
	{`{{internet.exampleEmail}}`, `^[A-Za-z._0-9]+@example\.(com|net|org)$`},
	{`{{internet.userName}}`, `^[A-Za-z]+([._][A-Za-z]+)?\d{0,2}$`},
	{`{{internet.domainName}}`, `^[a-z]+\.[a-z]+$`},
	{`{{internet.domainWord}}`, `^[a-z]+$`},
	{`{{internet.domainSuffix}}`, `^[a-z]+$`},
	{`{{internet.url}}`, `^https?://[a-z]+\.[a-z]+$`},
	{`{{internet.protocol}}`, `^https?$`},
	{`{{internet.ip}}`, `^(\d{1,3}\.){3}\d{1,3}$`},
	{`{{internet.ipv6}}`, `^([0-9a-f]{4}:){7}[0-9a-f]{4}$`},
	{`{{internet.mac}}`, `^([0-9a-f]{2}:){5}[0-9a-f]{2}$`},
	{`{{internet.color}}`, `^#[0-9a-f]{6}$`},
	{`{{internet.userAgent}}`, `^(Mozilla/5\.0 \(.+|curl/[\d.]+)$`},
	{`{{internet.password}}`, `^[a-z0-9]{15}$`},
	{`{{address.country}}`, `^[A-Z][A-Za-z ]+$`},
	{`{{address.countryCode}}`, `^[A-Z]{2}$`},
	{`{{address.city}}`, `^[A-Z][A-Za-z ]+$`},
	{`{{address.state}}`, `^[A-Z][A-Za-z ]+$`},
	{`{{address.stateAbbr}}`, `^[A-Z]{2}$`},
	{`{{address.zipCode}}`, `^\d{5}(-\d{4})?$`},
	{`{{address.zipCode("??-###")}}`, `^[A-Z]{2}-\d{3}$`},
	{`{{address.streetName}}`, `^[A-Z][a-z]+ [A-Z][a-z]+$`},
	{`{{address.streetAddress}}`, `^\d{3,5} [A-Z][a-z]+ [A-Z][a-z]+$`},
	{`{{address.streetAddress(true)}}`, `^\d{3,5} [A-Z][a-z]+ [A-Z][a-z]+ (Apt\.|Suite) \d{3}$`},
	{`{{address.secondaryAddress}}`, `^(Apt\.|Suite) \d{3}$`},
	{`{{address.latitude}}`, `^-?\d{1,2}\.\d{4}$`},
	{`{{address.longitude}}`, `^-?\d{1,3}\.\d{4}$`},
	{`{{commerce.productName}}`, `^[A-Z][a-z]+ [A-Z][a-z]+ [A-Z][a-z]+$`},
	{`{{commerce.product}}`, `^[A-Z][a-z]+$`},
	{`{{commerce.productAdjective}}`, `^[A-Z][a-z]+$`},
	{`{{commerce.productMaterial}}`, `^[A-Z][a-z]+$`},
	{`{{commerce.department}}`, `^[A-Z][a-z]+$`},
	{`{{commerce.color}}`, `^[a-z]+$`},
	{`{{commerce.price}}`, `^\d{1,4}\.\d\d$`},
	{`{{commerce.price(1, 2, 0, "$")}}`, `^\$[12]$`},
	{`{{company.companyName}}`, `^[A-Z][a-z]+( [A-Za-z ]+| - [A-Z][a-z]+|, [A-Z][a-z]+ and [A-Z][a-z]+)$`},
	{`{{company.companySuffix}}`, `^[A-Za-z ]+$`},
	{`{{company.catchPhrase}}`, `^[A-Z][a-z-]+ [a-z0-9/-]+ [a-z]+$`},
	{`{{company.bs}}`, `^[a-z]+ [a-z-]+ [a-z -]+$`},
	{`{{finance.amount(10, 20)}}`, `^(1\d|20)\.\d\d$`},
	{`{{finance.account}}`, `^\d{8}$`},
	{`{{finance.currencyCode}}`, `^[A-Z]{3}$`},
	{`{{finance.transactionType}}`, `^[a-z]+$`},
	{`{{lorem.word}}`, `^[a-z]+$`},
	{`{{lorem.words}}`, `^[a-z]+ [a-z]+ [a-z]+$`},
	{`{{lorem.slug(2)}}`, `^[a-z]+-[a-z]+$`},
	{`{{lorem.sentence}}`, `^[A-Z][a-z]*( [a-z]+){2,9}\.$`},
	{`{{lorem.sentence(4)}}`, `^[A-Z][a-z]*( [a-z]+){3}\.$`},
	{`{{lorem.text}}`, `^[A-Z][a-z]*( [a-z]+){2,9}\.$`},
	{`{{lorem.sentences(2)}}`, `^[A-Z][a-z ]+\. [A-Z][a-z ]+\.$`},
	{`{{lorem.paragraph(1)}}`, `^[A-Z][a-z ]+\.( [A-Z][a-z ]+\.){0,3}$`},
	{`{{phone.phoneNumber}}`, `^[\d()+ .-]{12,15}$`},
	{`{{phone.phoneNumber("+44 #### ######")}}`, `^\+44 \d{4} \d{6}$`},
	{`{{hacker.abbreviation}}`, `^[A-Z]+$`},
	{`{{hacker.adjective}}`, `^[a-z0-9 -]+$`},
	{`{{hacker.noun}}`, `^[a-z ]+$`},
	{`{{hacker.verb}}`, `^[a-z ]+$`},
	{`{{hacker.ingverb}}`, `^[a-z ]+$`},
	{`{{helpers.replaceSymbolWithNumber("AB-###")}}`, `^AB-\d{3}$`},
	{`{{helpers.replaceSymbolWithNumber("%%", "%")}}`, `^\d\d$`},
	{`{{helpers.replaceSymbols("??-##-*")}}`, `^[A-Z]{2}-\d\d-[A-Z0-9]$`},
	{`{{helpers.randomize(["x","y"])}}`, `^[xy]$`},
	{`{{helpers.shuffle(["a","b","c"])}}`, `^(a,b,c|a,c,b|b,a,c|b,c,a|c,a,b|c,b,a)$`},
	{`{{helpers.slugify("Hello World! 2024")}}`, `^Hello-World-2024$`},
}

func TestHelperShapes(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range helperCases {
		name := c.tmpl[2:strings.IndexAny(c.tmpl, "(}")]
		covered[name] = true
		re := regexp.MustCompile(c.re)
		t.Run(c.tmpl, func(t *testing.T) {
			tp, err := Parse(c.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			for seed := range uint64(300) {
				got := string(tp.Execute(nil, seeded(seed), testNow))
				if !re.MatchString(got) {
					t.Fatalf("seed %d: %q does not match %s", seed, got, c.re)
				}
			}
		})
	}
	for _, name := range HelperNames() {
		if !covered[name] {
			t.Errorf("helper %s has no case in helperCases", name)
		}
	}
}

// TestDeterminism: one seed, one output; the whole registry in one
// template.
func TestDeterminism(t *testing.T) {
	var b strings.Builder
	for _, c := range helperCases {
		b.WriteString(c.tmpl)
		b.WriteString("|")
	}
	tp, err := Parse(b.String())
	if err != nil {
		t.Fatal(err)
	}
	a1 := tp.Execute(nil, seeded(42), testNow)
	a2 := tp.Execute(nil, seeded(42), testNow)
	if string(a1) != string(a2) {
		t.Fatalf("same seed, different records:\n%s\n%s", a1, a2)
	}
	if c := tp.Execute(nil, seeded(43), testNow); string(c) == string(a1) {
		t.Fatalf("seeds 42 and 43 rendered the same record")
	}
	// Execute appends.
	if got := tp.Execute([]byte("prefix:"), seeded(42), testNow); string(got) != "prefix:"+string(a1) {
		t.Fatalf("Execute did not append to dst")
	}
}

func TestExecuteExact(t *testing.T) {
	for _, c := range []struct{ tmpl, want string }{
		{``, ``},
		{`plain text`, `plain text`},
		{`{"a":{"b":1}}`, `{"a":{"b":1}}`},
		{`{"x":{{{date.utc("YYYY")}}}}`, `{"x":{2010}}`},
		{`{{"{{"}}literal{{"}}"}}`, `{{literal}}`},
		{`{{ "quote \" and \u00e9" }}`, `quote " and é`},
		{`{{  date.now( "DD/MMM/YYYY:HH:mm:ss Z" )  }}`, `14/Feb/2010:15:25:50 -07:00`},
		{"{{date.now(\n  \"YYYY\"\n)}}", `2010`},
		{`{{faker.date.now("YYYY")}}`, `2010`},
		{`{{random.arrayElement(["}}"])}}`, `}}`},
		{`{{random.arrayElement(["only"])}} {{random.number({"min":3,"max":3})}}`, `only 3`},
		{`{{random.number({"min":1.5,"max":1.5,"precision":1})}}`, `1.5`},
		{`{{random.objectElement({"k":[1,2]})}}`, `1,2`},
		{`{{random.weightedArrayElement({"weights":[0,1],"data":["no","yes"]})}}`, `yes`},
		{`{{random.words(0)}}`, ``},
		{`{{random.arrayElements(["a"], 0)}}`, ``},
	} {
		if got := render1(t, c.tmpl, 1); got != c.want {
			t.Errorf("%s: got %q, want %q", c.tmpl, got, c.want)
		}
	}
}

func TestMomentFormats(t *testing.T) {
	for _, c := range []struct{ format, want string }{
		{"dddd, MMMM Do YYYY, h:mm:ss a", "Sunday, February 14th 2010, 3:25:50 pm"},
		{"ddd, hA", "Sun, 3PM"},
		{"DD/MMM/YYYY:HH:mm:ss ZZ", "14/Feb/2010:15:25:50 -0700"},
		{"YYYY-MM-DDTHH:mm:ss.SSSZ", "2010-02-14T15:25:50.123-07:00"},
		{"YY Q M MM Mo D Do DDD DDDD d dd E", "10 1 2 02 2nd 14 14th 45 045 0 Su 7"},
		{"W WW GGGG", "6 06 2010"},
		{"H HH h hh k kk m mm s ss", "15 15 3 03 15 15 25 25 50 50"},
		{"S SS SSSSSS SSSSSSSSS", "1 12 123456 123456789"},
		{"X x", "1266186350 1266186350123"},
		{"[YYYY is] YYYY [today]", "YYYY is 2010 today"},
		{"A a", "PM pm"},
		{"TO ,;-/ [tokens]", "TO ,;-/ tokens"},
	} {
		mf, err := compileMoment(c.format)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(mf.appendTo(nil, testNow)); got != c.want {
			t.Errorf("%q: got %q, want %q", c.format, got, c.want)
		}
	}
	midnight := time.Date(2021, 1, 1, 0, 5, 0, 0, time.UTC)
	mf, _ := compileMoment("h hh k A Do W GGGG Z")
	if got, want := string(mf.appendTo(nil, midnight)), "12 12 24 AM 1st 53 2020 +00:00"; got != want {
		t.Errorf("midnight: got %q, want %q", got, want)
	}
	for _, d := range []int{1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31} {
		got := string(appendOrdinal(nil, d))
		want := map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 22: "22nd", 23: "23rd", 31: "31st"}[d]
		if got != want {
			t.Errorf("ordinal %d: got %s, want %s", d, got, want)
		}
	}
}

func TestRandomNumberRange(t *testing.T) {
	for _, c := range []struct {
		tmpl string
		want []string
	}{
		{`{{random.number(2)}}`, []string{"0", "1", "2"}},
		{`{{random.number({"min":-1,"max":1})}}`, []string{"-1", "0", "1"}},
		{`{{random.number({"min":0,"max":1,"precision":0.5})}}`, []string{"0", "0.5", "1"}},
		{`{{random.number({"min":0.1,"max":0.3,"precision":0.1})}}`, []string{"0.1", "0.2", "0.3"}},
		{`{{random.boolean}}`, []string{"false", "true"}},
	} {
		tp := MustParse(c.tmpl)
		r := seeded(7)
		seen := map[string]int{}
		for range 3000 {
			seen[string(tp.Execute(nil, r, testNow))]++
		}
		if len(seen) != len(c.want) {
			t.Errorf("%s: got values %v, want exactly %v", c.tmpl, seen, c.want)
		}
		for _, w := range c.want {
			if seen[w] < 500 {
				t.Errorf("%s: %q came %d times in 3000, want about %d", c.tmpl, w, seen[w], 3000/len(c.want))
			}
		}
	}
}

func TestWeightedDistribution(t *testing.T) {
	tp := MustParse(`{{random.weightedArrayElement({"weights":[0.1,0.9],"data":["rare","common"]})}}`)
	r := seeded(3)
	n := 0
	for range 10000 {
		if string(tp.Execute(nil, r, testNow)) == "rare" {
			n++
		}
	}
	if n < 800 || n > 1200 {
		t.Errorf("rare came %d times in 10000, want about 1000", n)
	}
}

func TestOneLine(t *testing.T) {
	tp := MustParse("\n  {\n    \"n\": {{random.number(\n 0\n)}},\n    \"s\": \"a\r\nb\"\n  }\n")
	if got, want := string(tp.OneLine().Execute(nil, seeded(1), testNow)), `{    "n": 0,    "s": "ab"  }`; got != want {
		t.Errorf("OneLine: got %q, want %q", got, want)
	}
	if got := string(tp.Execute(nil, seeded(1), testNow)); !strings.Contains(got, "\n") {
		t.Errorf("the original template lost its line breaks: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		tmpl string
		want []string // substrings of the error
	}{
		{`{{random.numbr(5)}}`, []string{"line 1, column 1", "random.numbr: unknown helper", "did you mean random.number?", "docs/produce.md"}},
		{`{{uuid}}`, []string{"uuid: unknown helper", "did you mean random.uuid?"}},
		{`{{frobnicate.all}}`, []string{"frobnicate.all: unknown helper (docs"}},
		{"{\n  \"a\": {{random.number({\"min\":10,\"max\":1})}}\n}", []string{"line 2, column 8", "random.number: min 10 is greater than max 1", `accepted: random.number, random.number(max)`}},
		{`{{random.number("ten")}}`, []string{"random.number: the argument must be a number (the max) or an object", "got a string"}},
		{`{{random.number({"min":1,"maximum":3})}}`, []string{`unknown key "maximum"`, "min, max, precision"}},
		{`{{random.number({"precision":0})}}`, []string{"precision must be greater than 0"}},
		{`{{random.number(1e300)}}`, []string{"min and max must be between"}},
		{`{{random.number(1, 2)}}`, []string{"takes at most one argument, got 2"}},
		{`{{random.arrayElement([])}}`, []string{"random.arrayElement: the argument is an empty array"}},
		{`{{random.arrayElement}}`, []string{"random.arrayElement: needs an argument", `accepted: random.arrayElement(["a","b",...])`}},
		{`{{random.arrayElement('a','b')}}`, []string{"arguments are not valid JSON", "double quotes"}},
		{`{{random.arrayElement(["a",])}}`, []string{"arguments are not valid JSON"}},
		{`{{random.arrayElement("a")}}`, []string{"must be a JSON array", "got a string"}},
		{`{{random.arrayElements(["a"], 2)}}`, []string{"count must be between 0 and 1, got 2"}},
		{`{{random.weightedArrayElement({"weights":[1],"data":["a","b"]})}}`, []string{`"weights" has 1 elements and "data" 2`}},
		{`{{random.weightedArrayElement({"weights":[0],"data":["a"]})}}`, []string{"the weights add up to 0"}},
		{`{{random.weightedArrayElement({"weights":[-1, 2],"data":["a","b"]})}}`, []string{"weight 1 is negative"}},
		{`{{random.weightedArrayElement({"data":["a"]})}}`, []string{`needs both "weights" and "data"`}},
		{`{{random.uuid(4)}}`, []string{"random.uuid: takes no arguments, got 1"}},
		{`{{random.words(1.5)}}`, []string{"count must be a whole number"}},
		{`{{random.alphaNumeric(-1)}}`, []string{"count must be between 0 and 65536"}},
		{`{{date.now(5)}}`, []string{"date.now: the format must be a string", "got a number"}},
		{`{{date.now("[YYYY")}}`, []string{"date.now: unterminated ["}},
		{`{{date.between("2024-02-01", "2024-01-01")}}`, []string{"from 2024-02-01T00:00:00Z is after to 2024-01-01T00:00:00Z"}},
		{`{{date.between("yesterday", "2024-01-01")}}`, []string{`from "yesterday" is not a date`}},
		{`{{date.past(0)}}`, []string{"years must be greater than 0"}},
		{`{{date.month({"short":true})}}`, []string{`unknown key "short"`}},
		{`{{date.simTime}}`, []string{"date.simTime: not supported", "use date.now"}},
		{`{{commerce.price(10, 1)}}`, []string{"commerce.price: min 10 is greater than max 1"}},
		{`{{commerce.price(1, 2, 11)}}`, []string{"decimals must be between 0 and 10"}},
		{`{{helpers.replaceSymbolWithNumber("#", "ab")}}`, []string{"the symbol must be one ASCII character"}},
		{`{{address.streetAddress("yes")}}`, []string{"must be true or false"}},
		{`{{random.objectElement({"a":1}, "both")}}`, []string{`must be "key" or "value"`}},
		{`abc {{random.number(5)`, []string{"line 1, column 5", "random.number: expected }} after random.number(5)"}},
		{`{{random.number(5}}`, []string{"random.number: unclosed ("}},
		{`{{ }}`, []string{"expected a helper name", `{{"{{"}}`}},
		{`{{"unterminated}}`, []string{"unterminated string literal"}},
		{`{{"a" x}}`, []string{"expected }} after the string literal"}},
		{`{{random.}}`, []string{`random: "random.}}": a helper name is words joined by dots`}},
		{`{{random..uuid}}`, []string{"a helper name is words joined by dots"}},
		{"ü{{random.nope}}", []string{"line 1, column 2"}},
	} {
		_, err := Parse(c.tmpl)
		if err == nil {
			t.Errorf("Parse(%q): no error", c.tmpl)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q): %T is not a *ParseError", c.tmpl, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q):\n  error %q\n  does not contain %q", c.tmpl, err, w)
			}
		}
	}
}

// TestHelpersDocumented keeps docs/produce.md in step with the registry.
func TestHelpersDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/produce.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, name := range HelperNames() {
		if !strings.Contains(doc, "`"+name) {
			t.Errorf("docs/produce.md does not document %s", name)
		}
	}
	for name := range unsupported {
		if !strings.Contains(doc, name) {
			t.Errorf("docs/produce.md does not mention the unsupported %s", name)
		}
	}
}

// TestDocExamplesParse checks every {{...}} in docs/produce.md parses.
func TestDocExamplesParse(t *testing.T) {
	b, err := os.ReadFile("../../docs/produce.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("`([^`]*\\{\\{[^`]*)`")
	// Snippets that show syntax or a mistake, not a template.
	notExamples := map[string]bool{
		"{{module.helper}}": true, "{{module.helper(args)}}": true,
		`"status": "{{...}}"`: true, "{{date.now(YYYY)}}": true,
	}
	n := 0
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		src := m[1]
		if notExamples[src] {
			continue
		}
		name := strings.TrimPrefix(src, "{{")
		if i := strings.IndexAny(name, "(}"); i > 0 {
			name = name[:i]
		}
		if _, ok := unsupported[name]; ok {
			continue
		}
		if _, err := Parse(src); err != nil {
			t.Errorf("docs/produce.md example %s: %v", src, err)
		}
		n++
	}
	if n < 100 {
		t.Errorf("found only %d examples in docs/produce.md", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range helperCases {
		f.Add(c.tmpl)
	}
	for _, s := range []string{
		"", "{{", "}}", "{{{", "{{}}", `{{"`, `{{random.number(`, `{{random.number({"min":`,
		`{"id": {{random.number(100)}}, "at": "{{date.now("YYYY-MM-DD")}}"}`,
		`{{date.now("[")}}`, `{{random.arrayElement([[[[]]]])}}`, `{{a.b.c.d}}`, "{{\x00}}",
		`{{random.number({"min":-9007199254740991,"max":9007199254740991,"precision":1e-300})}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tp, err := Parse(src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Column < 1 {
				t.Fatalf("Parse(%q): bad error %#v", src, err)
			}
			return
		}
		r := seeded(1)
		out := tp.Execute(nil, r, testNow)
		tp.OneLine().Execute(out[:0], r, testNow)
	})
}

func BenchmarkExecute(b *testing.B) {
	tp := MustParse(`{"id": {{random.number(100)}}, "data": "{{address.country}}", "user": "{{internet.email}}", "session": "{{random.uuid}}", "price": {{commerce.price}}, "date": "{{date.now("YYYY-MM-DD HH:mm:ss")}}"}`)
	r := seeded(1)
	now := time.Now()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = tp.Execute(buf[:0], r, now)
	}
	b.SetBytes(int64(len(buf)))
}

// TestExecuteJSON renders a KDG-style JSON template and decodes it.
func TestExecuteJSON(t *testing.T) {
	tp := MustParse(`{
    "sensorId": {{random.number(50)}},
    "currentTemperature": {{random.number(
        {
            "min":10,
            "max":150
        }
    )}},
    "status": "{{random.arrayElement(
        ["OK","FAIL","WARN"]
    )}}",
    "at": "{{date.now("YYYY-MM-DD HH:mm:ss")}}"
}`).OneLine()
	for seed := range uint64(50) {
		out := tp.Execute(nil, seeded(seed), testNow)
		var v struct {
			SensorID           int    `json:"sensorId"`
			CurrentTemperature int    `json:"currentTemperature"`
			Status             string `json:"status"`
			At                 string `json:"at"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if v.SensorID < 0 || v.SensorID > 50 || v.CurrentTemperature < 10 || v.CurrentTemperature > 150 ||
			!strings.Contains("OK FAIL WARN", v.Status) || v.At != "2010-02-14 15:25:50" || strings.Contains(string(out), "\n") {
			t.Fatalf("bad record %s", out)
		}
	}
}
