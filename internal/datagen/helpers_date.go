package datagen

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Date helpers: date.now and date.utc (moment.js formats, see moment.go),
// and the random moments of date.past, date.future and friends.

const (
	dayMs  = 24 * 3600 * 1000
	yearMs = 365 * dayMs
)

// isoMilli is how date.past, date.future and the like render: UTC with
// milliseconds, as JavaScript's Date.toISOString.
const isoMilli = "2006-01-02T15:04:05.000Z07:00"

func compileDateFormat(utc bool) func([]any) (generator, error) {
	return func(args []any) (generator, error) {
		if err := argc(args, 0, 1); err != nil {
			return nil, err
		}
		def := momentDefaultLocal
		if utc {
			def = momentDefaultUTC
		}
		f, err := optStr(args, 0, "the format", def)
		if err != nil {
			return nil, err
		}
		mf, err := compileMoment(f)
		if err != nil {
			return nil, err
		}
		if utc {
			return func(dst []byte, _ *rand.Rand, now time.Time) []byte { return mf.appendTo(dst, now.UTC()) }, nil
		}
		return func(dst []byte, _ *rand.Rand, now time.Time) []byte { return mf.appendTo(dst, now) }, nil
	}
}

// compileCurrentTimestamp is the KDG's old {{current.timestamp}}, which it
// rewrites to {{date.now}}.
func compileCurrentTimestamp(args []any) (generator, error) {
	if err := argc(args, 0, 0); err != nil {
		return nil, err
	}
	return compileDateFormat(false)(nil)
}

// compileDateOffset is date.past/future (years) and recent/soon (days): a
// time between 1 s and the span away from now (or from a reference date),
// in direction sign.
func compileDateOffset(sign int64, unitMs float64, unit string) func([]any) (generator, error) {
	return func(args []any) (generator, error) {
		hi := 2
		if unit == "days" {
			hi = 1
		}
		if err := argc(args, 0, hi); err != nil {
			return nil, err
		}
		span := 1.0
		if len(args) > 0 {
			var err error
			if span, err = num(args[0], unit); err != nil {
				return nil, err
			}
			if span <= 0 || span > 10000 {
				return nil, fmt.Errorf("%s must be greater than 0 and at most 10000, got %s", unit, fmtNum(span))
			}
		}
		var ref time.Time
		if len(args) > 1 {
			var err error
			if ref, err = date(args[1], "the reference date"); err != nil {
				return nil, err
			}
		}
		maxMs := max(int64(span*unitMs), 1000)
		return func(dst []byte, r *rand.Rand, now time.Time) []byte {
			base := now
			if !ref.IsZero() {
				base = ref
			}
			d := 1000 + r.Int64N(maxMs-1000+1)
			return time.UnixMilli(base.UnixMilli()+sign*d).UTC().AppendFormat(dst, isoMilli)
		}, nil
	}
}

func compileDateBetween(args []any) (generator, error) {
	if err := argc(args, 2, 2); err != nil {
		return nil, err
	}
	from, err := date(args[0], "from")
	if err != nil {
		return nil, err
	}
	to, err := date(args[1], "to")
	if err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, fmt.Errorf("from %s is after to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	lo := from.UnixMilli()
	span := to.UnixMilli() - lo + 1
	return func(dst []byte, r *rand.Rand, _ time.Time) []byte {
		return time.UnixMilli(lo+r.Int64N(span)).UTC().AppendFormat(dst, isoMilli)
	}, nil
}

func compileDateName(wide, abbr []string) func([]any) (generator, error) {
	return func(args []any) (generator, error) {
		if err := argc(args, 0, 1); err != nil {
			return nil, err
		}
		list := wide
		if len(args) == 1 {
			m, err := object(args[0], "the options", "abbr", "context")
			if err != nil {
				return nil, err
			}
			if v, ok := m["abbr"]; ok {
				b, ok := v.(bool)
				if !ok {
					return nil, fmt.Errorf(`"abbr" must be true or false, got %s`, typeName(v))
				}
				if b {
					list = abbr
				}
			}
		}
		return pick(list), nil
	}
}
