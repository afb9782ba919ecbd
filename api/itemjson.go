package api

import (
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
)

// Items are the answers of nearly every request, so they are written by
// hand instead of by c.JSON: encoding/json walks the struct by reflection,
// boxes it, and allocates for each time value, on every answer. The bytes
// are exactly encoding/json's (TestItemJSONMatchesEncodingJSON and its fuzz
// target hold them to it), HTML-safe escapes included.

// jsonContentType is what gin's c.JSON sends.
var jsonContentType = []string{"application/json; charset=utf-8"}

// maxPooledJSON keeps a page of large items (up to 1,000 of about 9 KiB)
// from staying in the pool; a page of typical items is far smaller.
const maxPooledJSON = 64 << 10

var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeItem answers one item as JSON.
func writeItem(c *gin.Context, status int, it models.Item) error {
	return writeJSONWith(c, status, func(b []byte) ([]byte, error) { return appendItem(b, it) })
}

// writeItems answers a page of items as a JSON array ([] when empty).
func writeItems(c *gin.Context, status int, items []models.Item) error {
	return writeJSONWith(c, status, func(b []byte) ([]byte, error) {
		b = append(b, '[')
		for i, it := range items {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendItem(b, it); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	})
}

// writeJSONWith writes what appendBody appends to a pooled buffer. An
// error (a time encoding/json could not write either) is returned before
// anything is written, so it is answered as a problem.
func writeJSONWith(c *gin.Context, status int, appendBody func([]byte) ([]byte, error)) error {
	bp := jsonBuffers.Get().(*[]byte)
	b, err := appendBody((*bp)[:0])
	if err == nil {
		c.Writer.Header()["Content-Type"] = jsonContentType
		c.Status(status)
		_, _ = c.Writer.Write(b) // a client gone now cannot be answered anyway
	}
	if cap(b) <= maxPooledJSON {
		*bp = b
		jsonBuffers.Put(bp)
	}
	return err
}

// appendItem appends it as encoding/json would write models.Item.
func appendItem(b []byte, it models.Item) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, it.ID, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, it.Name)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, it.Description)
	b = append(b, `,"created_at":`...)
	b, err := appendJSONTime(b, it.CreatedAt)
	if err != nil {
		return b, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = appendJSONTime(b, it.UpdatedAt); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// appendJSONTime writes t as time.Time's MarshalJSON does: quoted RFC 3339
// with nanoseconds, an error for a year outside 0-9999.
func appendJSONTime(b []byte, t interface{ AppendText([]byte) ([]byte, error) }) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	return append(b, '"'), err
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does:
// quote, backslash and control characters escaped (the five with short
// forms by them), <, > and & as \u00XX so the JSON is safe inside HTML,
// U+2028 and U+2029 escaped for JavaScript, and each byte that is not
// valid UTF-8 replaced by \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[done:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[done:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[done:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		done = i
	}
	b = append(b, s[done:]...)
	return append(b, '"')
}
