package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var fuzzSecret = []byte("fuzz-secret-fuzz-secret-fuzz-secret!")

// FuzzTokenProfile signs arbitrary header and claims text with the
// configured secret, so the fuzzer explores what a token holder (not just
// a forger) can send, and checks what verify accepts against the profile
// read independently with encoding/json's exact-key maps: claims known by
// their exact names only, with the types and limits the profile states.
func FuzzTokenProfile(f *testing.F) {
	now := time.Now().Unix()
	f.Add(`{"alg":"HS256","typ":"JWT"}`, `{"tenant":"acme","iat":`+itoa(now)+`,"exp":`+itoa(now+600)+`}`)
	f.Add(`{"alg":"HS256"}`, `{"tenant":"acme","tenant_id":7,"iat":`+itoa(now)+`,"exp":`+itoa(now+600)+`}`)
	f.Add(`{"alg":"HS256"}`, `{"role":"admin","iat":`+itoa(now)+`,"exp":`+itoa(now+600)+`.5}`)
	f.Add(`{"alg":"HS256"}`, `{"tenant":"acme","iat":`+itoa(now)+`,"EXP":`+itoa(now+600)+`}`)
	f.Add(`{"alg":"HS256"}`, `{"tenant":"acme","iat":`+itoa(now)+`,"exp":"`+itoa(now+600)+`"}`)
	f.Add(`{"alg":"HS256","crit":["exp"]}`, `{"iat":`+itoa(now)+`,"exp":`+itoa(now+600)+`}`)
	f.Add(`{"alg":"HS256","alg":"HS256"}`, `{"iat":`+itoa(now)+`,"exp":`+itoa(now+600)+`}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"tenant":"x","tenant":"y","iat":`+itoa(now)+`,"exp":`+itoa(now+600)+`}`)
	a, err := NewVerifier(Config{Secret: fuzzSecret, Leeway: 30 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header, claims string) {
		unsigned := b64url(header) + "." + b64url(claims)
		mac := hmac.New(sha256.New, fuzzSecret)
		mac.Write([]byte(unsigned))
		tok := unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		got, err := a.Verify("Bearer " + tok)
		if err != nil {
			return
		}
		if !utf8.ValidString(header) || !utf8.ValidString(claims) {
			t.Fatalf("accepted a token whose JSON is not UTF-8: %q %q", header, claims)
		}
		var h map[string]any
		if err := json.Unmarshal([]byte(header), &h); err != nil || h["alg"] != "HS256" {
			t.Fatalf("accepted header %q (alg %v, %v)", header, h["alg"], err)
		}
		for k := range h {
			if !headerParams[k] {
				t.Fatalf("accepted header parameter %q", k)
			}
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(claims))
		dec.UseNumber() // ids and dates compared without float rounding
		if err := dec.Decode(&m); err != nil || m == nil {
			t.Fatalf("accepted claims that are not one JSON object: %q", claims)
		}
		for k := range m {
			for _, n := range append(registeredClaims, "role", "tenant", "tenant_id") {
				if k != n && strings.EqualFold(k, n) {
					t.Fatalf("accepted claim %q beside the exact name %q", k, n)
				}
			}
		}
		expN, ok1 := m["exp"].(json.Number)
		iatN, ok2 := m["iat"].(json.Number)
		exp, err1 := expN.Float64()
		iat, err2 := iatN.Float64()
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			t.Fatalf("accepted claims without numeric exp and iat: %q", claims)
		}
		if exp <= iat || exp-iat > DefaultMaxLifetime.Seconds() || float64(time.Now().Add(-time.Minute).Unix()) > exp {
			t.Fatalf("accepted exp %v, iat %v", exp, iat)
		}
		if got.ExpiresAt == nil || got.ExpiresAt.Unix() != int64(exp) || got.IssuedAt.Unix() != int64(iat) {
			t.Fatalf("claims read exp %v iat %v, the JSON says %v %v", got.ExpiresAt, got.IssuedAt, exp, iat)
		}
		if v, ok := m["tenant"]; ok && v != got.Tenant {
			t.Fatalf("claims read tenant %q, the JSON says %v", got.Tenant, v)
		}
		if _, ok := m["tenant"]; !ok && got.Tenant != "" {
			t.Fatalf("claims read tenant %q from %q, which has no tenant claim", got.Tenant, claims)
		}
		if v, ok := m["role"]; ok && v != got.Role {
			t.Fatalf("claims read role %q, the JSON says %v", got.Role, v)
		}
		if v, ok := m["tenant_id"]; ok && v != json.Number(strconv.FormatInt(got.TenantID, 10)) {
			t.Fatalf("claims read tenant id %d, the JSON says %v", got.TenantID, v)
		}
	})
}

// FuzzCheckJSON checks the strict JSON gate: whatever it accepts is one
// valid JSON value in valid UTF-8, and any U+FFFD in the decoded value was
// in the text (as UTF-8 or as an escape), never a replacement that
// encoding/json made for broken input.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[1,2]`, `"\ud800"`, `"\ud83d\ude00"`,
		`"\udc00\ud800"`, "\"\xff\"", `"\ufffd"`, "\"\uFFFD\"", `{"a":1}{}`, `{"a":1} x`, `{"e\u0078p":1,"exp":2}`, `[[[[]]]]`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckJSON(b) != nil {
			return
		}
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("accepted %q, which is not valid JSON in UTF-8", b)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("accepted %q: %v", b, err)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		lower := bytes.ToLower(b)
		if bytes.Contains(out, []byte("\ufffd")) && !bytes.Contains(b, []byte("\ufffd")) && !bytes.Contains(lower, []byte(`\ufffd`)) {
			t.Fatalf("accepted %q, which decodes with a replacement character", b)
		}
	})
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestCheckJSON pins the gate's verdicts on the shapes the fuzzer and the
// matrix care about, unclosed containers included (a clean EOF from
// json.Decoder.Token inside one once let `""[` through).
func TestCheckJSON(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"a":1}`, true}, {`[1,{"a":[]}]`, true}, {`"x"`, true}, {`{"a":"\ud83d\ude00"}`, true}, {`{"a":{"a":1}}`, true},
		{`""[`, false}, {`{"a":1`, false}, {`[1`, false}, {`1 2`, false}, {`{} []`, false}, {``, false}, {`   `, false},
		{`{"a":1,"a":1}`, false}, {`{"a":1,"\u0061":1}`, false}, {`[{"b":1,"b":2}]`, false}, {`"\ud800"`, false},
		{`"\udc00"`, false}, {`"\ud800\u0041"`, false}, {"\"\xff\"", false}, {strings.Repeat("[", 33) + strings.Repeat("]", 33), false},
		{strings.Repeat("[", 32) + strings.Repeat("]", 32), true},
	} {
		if err := CheckJSON([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("CheckJSON(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
