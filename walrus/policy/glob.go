package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// pattern is a compiled wildcard pattern: its runes, with star standing for
// "*" (any run of characters, empty included) and one for "?" (exactly one
// character). A policy variable's value is copied in as plain runes, so a
// "*" in a user's name is never a wildcard.
type pattern []rune

const (
	star rune = -1
	one  rune = -2
)

// compile reads a pattern of Action, Resource or a Like condition. With
// vars (policy version 2012-10-17), ${key} is replaced by the request's
// value of that condition key, and ${*}, ${?} and ${$} by those characters
// taken literally. ok is false when a variable names a key the request
// lacks: then the pattern matches nothing, as in IAM.
func compile(s string, vars bool, ctx map[string][]string) (p pattern, ok bool) {
	p = make(pattern, 0, len(s))
	for i := 0; i < len(s); {
		if vars && strings.HasPrefix(s[i:], "${") {
			if end := strings.IndexByte(s[i:], '}'); end > 0 {
				name := s[i+2 : i+end]
				switch name {
				case "*", "?", "$":
					p = append(p, rune(name[0]))
				default:
					vs := ctx[strings.ToLower(name)]
					if len(vs) != 1 {
						return nil, false
					}
					p = append(p, []rune(vs[0])...)
				}
				i += end + 1
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '*':
			r = star
		case '?':
			r = one
		}
		p = append(p, r)
		i += size
	}
	return p, true
}

// match reports whether the pattern matches all of s; fold compares
// letters without case (action names). It backtracks only to the last
// star seen, so its cost is at most len(p)*len(s) steps.
func (p pattern) match(s string, fold bool) bool {
	t := []rune(s)
	pi, ti := 0, 0
	starP, starT := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && p[pi] == star:
			starP, starT = pi, ti
			pi++
		case pi < len(p) && (p[pi] == one || sameRune(p[pi], t[ti], fold)):
			pi++
			ti++
		case starP >= 0:
			// Let the last star take one more character.
			starT++
			pi, ti = starP+1, starT
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == star {
		pi++
	}
	return pi == len(p)
}

func sameRune(a, b rune, fold bool) bool {
	if a == b {
		return true
	}
	return fold && unicode.ToLower(a) == unicode.ToLower(b)
}

// hasWildcard reports a * or ? in s.
func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }
