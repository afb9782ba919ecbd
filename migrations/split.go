package migrations

import "strings"

// SplitStatements cuts a script of SQL statements at its top-level
// semicolons and returns the statements, trimmed, without their
// terminators; empty statements (";;", a trailing ";", a comment alone) are
// dropped.
//
// Citus propagates DDL on a distributed schema to the workers as the text of
// the statement being run, and with a multi-statement query string that text
// is the whole script, which a worker refuses ("cannot insert multiple
// commands into a prepared statement"). Steps and onboarding scripts are
// therefore sent one statement at a time there. The lexing follows
// PostgreSQL's scanner for everything that can hide a semicolon:
// 'strings' (a doubled quote inside stands for one), E'strings' (with
// backslash escapes), "identifiers", $tag$dollar quotes$tag$, -- line
// comments and nested /* block comments */. A parameter such as $1, and a $ inside an
// identifier (a$b), start no dollar quote. An unterminated quote or comment
// runs to the end of the text, which then stays one statement, and the
// server reports the syntax error as it would have for the whole script.
// Not handled: a SQL-standard function body (CREATE FUNCTION ... BEGIN
// ATOMIC ... END, PostgreSQL 14+), whose inner semicolons need the nesting
// psql tracks; write such a function with a dollar-quoted body instead.
func SplitStatements(sql string) []string {
	spans := statementSpans(sql)
	out := make([]string, 0, len(spans))
	for _, sp := range spans {
		out = append(out, sql[sp[0]:sp[1]])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// statementSpans returns where each statement of sql starts and ends,
// trimmed of blanks.
func statementSpans(sql string) [][2]int {
	var out [][2]int
	start := 0
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ';':
			out = appendSpan(out, sql, start, i)
			i++
			start = i
		case c == '\'':
			i = skipQuoted(sql, i+1, '\'', escapeString(sql, i))
		case c == '"':
			i = skipQuoted(sql, i+1, '"', false)
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			i = skipBlockComment(sql, i)
		case c == '$' && !inIdentifier(sql, i):
			if tag, ok := dollarTag(sql, i); ok {
				if j := strings.Index(sql[i+len(tag):], tag); j >= 0 {
					i += len(tag) + j + len(tag)
				} else {
					i = len(sql)
				}
			} else {
				i++
			}
		case isIdentStart(c) || isDigit(c):
			// A whole word at once, so that a $ or a quote character
			// inside it (a$b, or the E of a name ending in e before a
			// quote) is judged as PostgreSQL's scanner judges it.
			j := i + 1
			for j < len(sql) && isIdentCont(sql[j]) {
				j++
			}
			i = j
		default:
			i++
		}
	}
	return appendSpan(out, sql, start, len(sql))
}

// appendSpan adds sql[start:end], trimmed, unless it holds nothing but
// blanks and comments.
func appendSpan(out [][2]int, sql string, start, end int) [][2]int {
	stmt := sql[start:end]
	trimmed := strings.TrimLeft(stmt, blanks)
	start += len(stmt) - len(trimmed)
	trimmed = strings.TrimRight(trimmed, blanks)
	if onlyComments(trimmed) {
		return out
	}
	return append(out, [2]int{start, start + len(trimmed)})
}

// blanks are what PostgreSQL's scanner skips between tokens.
const blanks = " \t\n\r\f\v"

// onlyComments reports whether s is empty once comments and blanks go.
func onlyComments(s string) bool {
	for i := 0; i < len(s); {
		switch {
		case s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v':
			i++
		case strings.HasPrefix(s[i:], "--"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return true
			}
			i += j + 1
		case strings.HasPrefix(s[i:], "/*"):
			i = skipBlockComment(s, i)
		default:
			return false
		}
	}
	return true
}

// escapeString reports whether the quote at i opens an escape string: the
// quote follows a lone E or e (not the end of a longer word such as
// "name'...", which is a syntax error anyway but must not change how the
// rest is cut).
func escapeString(sql string, i int) bool {
	return i >= 1 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i == 1 || !isIdentCont(sql[i-2]))
}

// skipQuoted returns the index after the quote that closes a quoted run
// starting at i (just past the opening quote). A doubled quote stands for
// itself; with backslash escapes, a backslash hides the next byte.
func skipQuoted(sql string, i int, q byte, backslash bool) int {
	for i < len(sql) {
		switch sql[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case q:
			if i+1 < len(sql) && sql[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(sql)
}

// skipBlockComment returns the index after the block comment opening at i.
// PostgreSQL's block comments nest.
func skipBlockComment(sql string, i int) int {
	depth := 0
	for i < len(sql) {
		switch {
		case strings.HasPrefix(sql[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(sql[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(sql)
}

// dollarTag returns the $tag$ opening a dollar quote at i: a tag is empty
// or an identifier without $, and cannot start with a digit ($1 is a
// parameter).
func dollarTag(sql string, i int) (string, bool) {
	j := i + 1
	if j < len(sql) && isDigit(sql[j]) {
		return "", false
	}
	for j < len(sql) && sql[j] != '$' {
		if !isIdentCont(sql[j]) || sql[j] == '$' {
			return "", false
		}
		j++
	}
	if j >= len(sql) {
		return "", false
	}
	return sql[i : j+1], true
}

// inIdentifier reports whether the $ at i continues a word (a$b).
func inIdentifier(sql string, i int) bool {
	return i > 0 && isIdentCont(sql[i-1])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isIdentStart follows PostgreSQL: letters, underscore, and any byte of a
// multi-byte character.
func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }
