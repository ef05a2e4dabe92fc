package datagen

import (
	"strconv"
	"strings"
	"time"
)

// Moment.js display formats, as the KDG's date.now and date.utc take them.
// A format is compiled once by compileMoment into tokens; rendering a time
// walks the tokens and appends, with no parsing per record.
//
// Supported tokens (moment's meaning; anything else is copied as is, and
// text in [brackets] is copied without the brackets):
//
//	YYYY YY Q  M MM MMM MMMM Mo  D DD Do DDD DDDD  d dd ddd dddd E
//	W WW GGGG  H HH h hh k kk  m mm  s ss  S SS SSS ... (up to 9 S)
//	A a  Z ZZ  X x
//
// Moment's defaults: date.now without a format is YYYY-MM-DDTHH:mm:ssZ,
// date.utc without a format is YYYY-MM-DDTHH:mm:ss[Z].
const (
	momentDefaultLocal = "YYYY-MM-DDTHH:mm:ssZ"
	momentDefaultUTC   = "YYYY-MM-DDTHH:mm:ss[Z]"
)

type momentKind uint8

const (
	mLiteral momentKind = iota
	mYear4
	mYear2
	mQuarter
	mMonth
	mMonth2
	mMonthAbbr
	mMonthWide
	mMonthOrdinal
	mDay
	mDay2
	mDayOrdinal
	mYearDay
	mYearDay3
	mWeekday
	mWeekdayMin
	mWeekdayAbbr
	mWeekdayWide
	mISOWeekday
	mISOWeek
	mISOWeek2
	mISOWeekYear
	mHour
	mHour2
	mHour12
	mHour12_2
	mHour24
	mHour24_2
	mMinute
	mMinute2
	mSecond
	mSecond2
	mFraction // n digits in tok.n
	mAMPM
	mAmPm
	mZoneColon
	mZone
	mUnix
	mUnixMilli
)

// momentTokens maps each token to its kind, longest first where one token
// is a prefix of another.
var momentTokens = []struct {
	tok  string
	kind momentKind
}{
	{"YYYY", mYear4}, {"YY", mYear2}, {"Q", mQuarter},
	{"MMMM", mMonthWide}, {"MMM", mMonthAbbr}, {"MM", mMonth2}, {"Mo", mMonthOrdinal}, {"M", mMonth},
	{"DDDD", mYearDay3}, {"DDD", mYearDay}, {"DD", mDay2}, {"Do", mDayOrdinal}, {"D", mDay},
	{"dddd", mWeekdayWide}, {"ddd", mWeekdayAbbr}, {"dd", mWeekdayMin}, {"d", mWeekday},
	{"E", mISOWeekday}, {"WW", mISOWeek2}, {"W", mISOWeek}, {"GGGG", mISOWeekYear},
	{"HH", mHour2}, {"H", mHour}, {"hh", mHour12_2}, {"h", mHour12}, {"kk", mHour24_2}, {"k", mHour24},
	{"mm", mMinute2}, {"m", mMinute}, {"ss", mSecond2}, {"s", mSecond},
	{"A", mAMPM}, {"a", mAmPm}, {"ZZ", mZone}, {"Z", mZoneColon}, {"X", mUnix}, {"x", mUnixMilli},
}

type momentTok struct {
	kind momentKind
	n    int    // digits of mFraction
	lit  string // text of mLiteral
}

// momentFormat is a compiled moment.js format.
type momentFormat []momentTok

// compileMoment compiles a moment.js format. It fails only on an
// unterminated [bracket].
func compileMoment(f string) (momentFormat, error) {
	var out momentFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, momentTok{kind: mLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(f); {
		if f[i] == '[' {
			j := strings.IndexByte(f[i+1:], ']')
			if j < 0 {
				return nil, errUnterminatedBracket
			}
			lit.WriteString(f[i+1 : i+1+j])
			i += j + 2
			continue
		}
		if f[i] == 'S' {
			n := 0
			for i+n < len(f) && f[i+n] == 'S' {
				n++
			}
			flush()
			for n > 0 {
				k := min(n, 9)
				out = append(out, momentTok{kind: mFraction, n: k})
				n -= k
				i += k
			}
			continue
		}
		matched := false
		for _, t := range momentTokens {
			if strings.HasPrefix(f[i:], t.tok) {
				flush()
				out = append(out, momentTok{kind: t.kind})
				i += len(t.tok)
				matched = true
				break
			}
		}
		if !matched {
			lit.WriteByte(f[i])
			i++
		}
	}
	flush()
	return out, nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errUnterminatedBracket = constError("unterminated [ in the format: escaped text is written [like this]")

func appendPad(dst []byte, v, width int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

func appendOrdinal(dst []byte, v int) []byte {
	dst = strconv.AppendInt(dst, int64(v), 10)
	suffix := "th"
	if v%100 < 11 || v%100 > 13 {
		switch v % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return append(dst, suffix...)
}

func appendZone(dst []byte, t time.Time, colon bool) []byte {
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign = '-'
		off = -off
	}
	dst = append(dst, sign)
	dst = appendPad(dst, off/3600, 2)
	if colon {
		dst = append(dst, ':')
	}
	return appendPad(dst, off%3600/60, 2)
}

// appendTo appends t formatted by f.
func (f momentFormat) appendTo(dst []byte, t time.Time) []byte {
	for _, tok := range f {
		switch tok.kind {
		case mLiteral:
			dst = append(dst, tok.lit...)
		case mYear4:
			dst = appendPad(dst, t.Year(), 4)
		case mYear2:
			dst = appendPad(dst, ((t.Year()%100)+100)%100, 2)
		case mQuarter:
			dst = strconv.AppendInt(dst, int64((int(t.Month())+2)/3), 10)
		case mMonth:
			dst = strconv.AppendInt(dst, int64(t.Month()), 10)
		case mMonth2:
			dst = appendPad(dst, int(t.Month()), 2)
		case mMonthAbbr:
			dst = append(dst, monthsAbbr[t.Month()-1]...)
		case mMonthWide:
			dst = append(dst, monthsWide[t.Month()-1]...)
		case mMonthOrdinal:
			dst = appendOrdinal(dst, int(t.Month()))
		case mDay:
			dst = strconv.AppendInt(dst, int64(t.Day()), 10)
		case mDay2:
			dst = appendPad(dst, t.Day(), 2)
		case mDayOrdinal:
			dst = appendOrdinal(dst, t.Day())
		case mYearDay:
			dst = strconv.AppendInt(dst, int64(t.YearDay()), 10)
		case mYearDay3:
			dst = appendPad(dst, t.YearDay(), 3)
		case mWeekday:
			dst = strconv.AppendInt(dst, int64(t.Weekday()), 10)
		case mWeekdayMin:
			dst = append(dst, weekdaysMin[t.Weekday()]...)
		case mWeekdayAbbr:
			dst = append(dst, weekdaysAbbr[t.Weekday()]...)
		case mWeekdayWide:
			dst = append(dst, weekdaysWide[t.Weekday()]...)
		case mISOWeekday:
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			dst = strconv.AppendInt(dst, int64(wd), 10)
		case mISOWeek:
			_, w := t.ISOWeek()
			dst = strconv.AppendInt(dst, int64(w), 10)
		case mISOWeek2:
			_, w := t.ISOWeek()
			dst = appendPad(dst, w, 2)
		case mISOWeekYear:
			y, _ := t.ISOWeek()
			dst = appendPad(dst, y, 4)
		case mHour:
			dst = strconv.AppendInt(dst, int64(t.Hour()), 10)
		case mHour2:
			dst = appendPad(dst, t.Hour(), 2)
		case mHour12, mHour12_2:
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			if tok.kind == mHour12 {
				dst = strconv.AppendInt(dst, int64(h), 10)
			} else {
				dst = appendPad(dst, h, 2)
			}
		case mHour24, mHour24_2:
			h := t.Hour()
			if h == 0 {
				h = 24
			}
			if tok.kind == mHour24 {
				dst = strconv.AppendInt(dst, int64(h), 10)
			} else {
				dst = appendPad(dst, h, 2)
			}
		case mMinute:
			dst = strconv.AppendInt(dst, int64(t.Minute()), 10)
		case mMinute2:
			dst = appendPad(dst, t.Minute(), 2)
		case mSecond:
			dst = strconv.AppendInt(dst, int64(t.Second()), 10)
		case mSecond2:
			dst = appendPad(dst, t.Second(), 2)
		case mFraction:
			ns := t.Nanosecond()
			for range 9 - tok.n {
				ns /= 10
			}
			dst = appendPad(dst, ns, tok.n)
		case mAMPM:
			if t.Hour() < 12 {
				dst = append(dst, "AM"...)
			} else {
				dst = append(dst, "PM"...)
			}
		case mAmPm:
			if t.Hour() < 12 {
				dst = append(dst, "am"...)
			} else {
				dst = append(dst, "pm"...)
			}
		case mZoneColon:
			dst = appendZone(dst, t, true)
		case mZone:
			dst = appendZone(dst, t, false)
		case mUnix:
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case mUnixMilli:
			dst = strconv.AppendInt(dst, t.UnixMilli(), 10)
		}
	}
	return dst
}
