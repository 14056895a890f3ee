package conf

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// statement is one KEY=value assignment as a shell would see it: quotes
// removed, escapes and earlier variables resolved.
type statement struct {
	key   string
	value string // untrimmed: element offsets into it map back to lines
	line  int    // line of the key
	marks []lineMark
}

// lineMark: value text from byte offset off on was written on line.
type lineMark struct{ off, line int }

// lineAt returns the line on which the byte at offset off of the value was
// written, so an error about the third pair of a VNET_MACMAP that spans five
// lines points at the right one.
func (s *statement) lineAt(off int) int {
	// marks ascend in off; the last one at or before off holds the line.
	i := sort.Search(len(s.marks), func(i int) bool { return s.marks[i].off > off })
	if i == 0 {
		return s.line
	}
	return s.marks[i-1].line
}

// Typographic quotes come from word processors and PDF copies; the 1.5 docs
// themselves use ” on both sides. Read them as the ASCII quote they stand for.
func isDoubleQuote(r rune) bool { return r == '"' || r == '\u201C' || r == '\u201D' }
func isSingleQuote(r rune) bool { return r == '\'' || r == '\u2018' || r == '\u2019' }

const (
	// maxValue bounds one value and maxExpanded all values together, since
	// A=$A$A repeated doubles with each line.
	maxValue    = 1 << 20
	maxExpanded = 16 << 20
)

type lexer struct {
	src  string
	pos  int
	line int
	ds   *sink

	env      map[string]string // values assigned so far, for $VAR
	setAt    map[string]int    // first line each name is assigned on
	defaults map[string]string // known keys' defaults, for $VAR before the file sets VAR
	refs     []varRef          // names used before being set: resolved after the whole file is read
	budget   int

	st          *statement
	buf         strings.Builder
	typo        []rune // typographic quotes seen in this statement
	tooLong     bool
	atWordStart bool // at the start of a word: a '#' here opens a comment
}

type varRef struct {
	name string
	line int
	key  string
	dflt bool // a known key's default was used
}

// lex splits src into statements. Lines it cannot read as assignments are
// reported and skipped, so one bad line does not hide the rest of the file.
func lex(src string, ds *sink) []*statement {
	l := &lexer{
		src:      strings.ReplaceAll(src, "\r\n", "\n"),
		line:     1,
		ds:       ds,
		env:      map[string]string{},
		setAt:    map[string]int{},
		defaults: defaultStrings(),
		budget:   maxExpanded,
	}
	var out []*statement
	for {
		l.skipBlank()
		if l.pos >= len(l.src) {
			break
		}
		if l.src[l.pos] == '#' {
			l.skipLine()
			continue
		}
		if st := l.statement(); st != nil {
			out = append(out, st)
		}
	}
	l.resolveRefs()
	return out
}

func (l *lexer) peek() (rune, int) { return utf8.DecodeRuneInString(l.src[l.pos:]) }

// skipBlank skips whitespace, newlines included.
func (l *lexer) skipBlank() {
	for l.pos < len(l.src) {
		r, n := l.peek()
		if !unicode.IsSpace(r) {
			return
		}
		if r == '\n' {
			l.line++
		}
		l.pos += n
	}
}

// skipSpace skips whitespace within a line.
func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		r, n := l.peek()
		if r == '\n' || !unicode.IsSpace(r) {
			return
		}
		l.pos += n
	}
}

// skipLine moves past the next newline.
func (l *lexer) skipLine() {
	if i := strings.IndexByte(l.src[l.pos:], '\n'); i >= 0 {
		l.pos += i + 1
		l.line++
		return
	}
	l.pos = len(l.src)
}

func isNameStart(c byte) bool { return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' }
func isNameChar(c byte) bool  { return isNameStart(c) || '0' <= c && c <= '9' }

func (l *lexer) name() string {
	start := l.pos
	if l.pos < len(l.src) && isNameStart(l.src[l.pos]) {
		l.pos++
		for l.pos < len(l.src) && isNameChar(l.src[l.pos]) {
			l.pos++
		}
	}
	return l.src[start:l.pos]
}

func (l *lexer) notAssignment(start int) {
	text := l.src[start:]
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	l.ds.add(Diagnostic{Line: l.line, Value: strings.TrimSpace(text), Severity: Error,
		Message: `not a KEY="value" line`})
	l.skipLine()
}

func (l *lexer) statement() *statement {
	start, line := l.pos, l.line
	key := l.name()
	if key == "export" && l.pos < len(l.src) && (l.src[l.pos] == ' ' || l.src[l.pos] == '\t') {
		// Files meant to be sourced export their keys; the prefix changes nothing here.
		l.skipSpace()
		key = l.name()
		if key != "" && l.atLineEnd() {
			l.skipLine() // "export KEY" of a key set earlier: nothing to read
			return nil
		}
	}
	l.skipSpace() // KEY ="v" is no shell syntax, but nobody means anything else by it
	if key == "" || l.pos >= len(l.src) || l.src[l.pos] != '=' {
		l.pos = start
		l.notAssignment(start)
		return nil
	}
	l.pos++

	l.st = &statement{key: key, line: line}
	l.buf.Reset()
	l.typo = l.typo[:0]
	l.tooLong = false
	l.atWordStart = true
	if !l.value() {
		return nil
	}
	st := l.st
	st.value = l.buf.String()
	if l.tooLong {
		l.ds.add(Diagnostic{Line: line, Key: key, Severity: Error,
			Message: fmt.Sprintf("value longer than %d KiB (or variables expanded past the file's budget)", maxValue>>10)})
		return nil
	}
	if len(l.typo) > 0 {
		l.ds.add(Diagnostic{Line: line, Key: key, Value: strings.TrimSpace(st.value), Severity: Warning,
			Message: fmt.Sprintf("typographic quotes (%s) read as plain quotes", string(l.typo))})
	}
	l.env[key] = strings.TrimSpace(st.value)
	if _, ok := l.setAt[key]; !ok {
		l.setAt[key] = line
	}
	return st
}

func (l *lexer) atLineEnd() bool {
	save := l.pos
	l.skipSpace()
	end := l.pos >= len(l.src) || l.src[l.pos] == '\n' || l.src[l.pos] == '#'
	l.pos = save
	return end
}

func (l *lexer) write(s string) {
	if l.tooLong {
		return
	}
	if l.buf.Len()+len(s) > maxValue || len(s) > l.budget {
		l.tooLong = true
		return
	}
	l.budget -= len(s)
	l.buf.WriteString(s)
}

// newline records that the value goes on on the next line.
func (l *lexer) newline() {
	l.line++
	l.st.marks = append(l.st.marks, lineMark{off: l.buf.Len(), line: l.line})
}

func (l *lexer) noteTypo(r rune) {
	if r < utf8.RuneSelf {
		return
	}
	for _, t := range l.typo {
		if t == r {
			return
		}
	}
	l.typo = append(l.typo, r)
}

// value reads the rest of the assignment. Unlike a shell, unquoted blanks do
// not end it: "VNET_PUBLICIPS= 10.0.0.1 10.0.0.2" is a list in the 1.5 docs.
// It reports false when the value cannot be read (an unterminated quote).
func (l *lexer) value() bool {
	for l.pos < len(l.src) {
		r, n := l.peek()
		switch {
		case r == '\n':
			l.pos++
			l.line++
			return true
		case r == '#' && l.atWordStart:
			l.skipLine()
			return true
		case r == '\\':
			l.pos += n
			l.escape(func(rune) bool { return true })
			l.atWordStart = false
		case isDoubleQuote(r):
			l.noteTypo(r)
			l.pos += n
			if !l.quoted(r, isDoubleQuote, true) {
				return false
			}
			l.atWordStart = false
		case isSingleQuote(r):
			l.noteTypo(r)
			l.pos += n
			if !l.quoted(r, isSingleQuote, false) {
				return false
			}
			l.atWordStart = false
		case r == '$':
			l.pos += n
			l.expand()
			l.atWordStart = false
		default:
			l.write(l.src[l.pos : l.pos+n])
			l.pos += n
			l.atWordStart = unicode.IsSpace(r)
		}
	}
	return true
}

// escape handles what follows a backslash: backslash-newline joins lines;
// escapable(r) says which characters lose the backslash (all of them outside
// quotes; only the shell's few inside double quotes).
func (l *lexer) escape(escapable func(rune) bool) {
	if l.pos >= len(l.src) {
		return
	}
	r, n := l.peek()
	switch {
	case r == '\n':
		l.pos++
		l.newline()
	case escapable(r):
		l.write(l.src[l.pos : l.pos+n])
		l.pos += n
	default:
		l.write("\\")
	}
}

func isDoubleQuoteEscapable(r rune) bool {
	return r == '$' || r == '`' || r == '\\' || isDoubleQuote(r)
}

// quoted reads up to the closing quote, which may be lines away: VNET_MACMAP
// and VNET_PUBLICIPS lists were written that way. Any quote of the same kind
// closes, so ”…” and “…” and "…” all pair up.
func (l *lexer) quoted(open rune, closes func(rune) bool, double bool) bool {
	openLine := l.line
	for l.pos < len(l.src) {
		r, n := l.peek()
		switch {
		case closes(r):
			l.noteTypo(r)
			l.pos += n
			return true
		case r == '\n':
			l.write("\n")
			l.pos++
			l.newline()
		case double && r == '\\':
			l.pos += n
			l.escape(isDoubleQuoteEscapable)
		case double && r == '$':
			l.pos += n
			l.expand()
		default:
			l.write(l.src[l.pos : l.pos+n])
			l.pos += n
		}
	}
	l.ds.add(Diagnostic{Line: l.st.line, Key: l.st.key, Severity: Error,
		Message: fmt.Sprintf("quote %c opened on line %d is never closed", open, openLine)})
	return false
}

// expand replaces $NAME or ${NAME} (the '$' already read) with the value
// NAME was last given above this line, as sh would. Eucalyptus's own file
// wrote INSTANCE_PATH as "${EUCALYPTUS}/var/lib/eucalyptus/instances".
func (l *lexer) expand() {
	var name string
	switch {
	case l.pos < len(l.src) && l.src[l.pos] == '{':
		end := strings.IndexAny(l.src[l.pos:], "}\n")
		if end >= 0 && l.src[l.pos+end] == '}' {
			inner := l.src[l.pos+1 : l.pos+end]
			if validName(inner) {
				name = inner
				l.pos += end + 1
				break
			}
			l.ds.add(Diagnostic{Line: l.line, Key: l.st.key, Value: "${" + inner + "}", Severity: Warning,
				Message: "only ${NAME} and $NAME are expanded; kept as written"})
		}
		l.write("$")
		return
	case l.pos < len(l.src) && isNameStart(l.src[l.pos]):
		name = l.name()
	default:
		l.write("$") // a lone '$' is just a dollar sign
		return
	}
	if v, ok := l.env[name]; ok {
		l.write(v)
		return
	}
	// Reading the process environment would make the same file mean different
	// things under systemd and in a shell; use the key's default instead.
	v, known := l.defaults[name]
	l.refs = append(l.refs, varRef{name: name, line: l.line, key: l.st.key, dflt: known})
	l.write(v)
}

func validName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// resolveRefs reports variables used before the file set them, now that the
// whole file is known: setting EUCALYPTUS below INSTANCE_PATH is a real trap.
func (l *lexer) resolveRefs() {
	for _, r := range l.refs {
		later, isSet := l.setAt[r.name]
		var msg string
		switch {
		case r.dflt && isSet:
			msg = fmt.Sprintf("$%s is set only later (line %d); its default %q was used here", r.name, later, l.defaults[r.name])
		case r.dflt:
			continue // e.g. ${EUCALYPTUS} in a file that keeps the default home
		case isSet:
			msg = fmt.Sprintf("$%s is set only later (line %d); expanded to nothing here", r.name, later)
		default:
			msg = fmt.Sprintf("$%s is not set above this line; expanded to nothing", r.name)
		}
		l.ds.add(Diagnostic{Line: r.line, Key: r.key, Severity: Warning, Message: msg})
	}
}
