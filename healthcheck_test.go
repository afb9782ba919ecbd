package main

import "testing"

func TestHealthzURLFollowsTheListenAddress(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080/healthz",
		"0.0.0.0:8080":   "http://127.0.0.1:8080/healthz",
		"[::]:8080":      "http://127.0.0.1:8080/healthz",
		"[::1]:9090":     "http://[::1]:9090/healthz",
		"127.0.0.2:8080": "http://127.0.0.2:8080/healthz",
	} {
		got, err := healthzURL(addr)
		if err != nil || got != want {
			t.Errorf("healthzURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := healthzURL("8080"); err == nil {
		t.Error(`healthzURL("8080") accepted an address without a port separator`)
	}
}
