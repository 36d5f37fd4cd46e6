package edge

import (
	"net/http"
	"testing"
)

// Behind a proxy the client is the address it wrote; a header that is
// missing or not an address falls back to the peer, never to what a
// client put before the proxy's entry.
func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		header, value, peer, want string
	}{
		{"", "", "10.0.0.5:4000", "10.0.0.5"},
		{"", "", "[::ffff:10.0.0.5]:4000", "10.0.0.5"},
		{"", "", "[2001:db8::1]:4000", "2001:db8::1"},
		{"", "203.0.113.7", "10.0.0.5:4000", "10.0.0.5"}, // not asked to trust it
		{"X-Real-IP", "203.0.113.7", "10.0.0.5:4000", "203.0.113.7"},
		{"X-Real-IP", "", "10.0.0.5:4000", "10.0.0.5"},
		{"X-Real-IP", "not an address", "10.0.0.5:4000", "10.0.0.5"},
		{"X-Forwarded-For", "198.51.100.1, 203.0.113.7", "10.0.0.5:4000", "203.0.113.7"},
		{"X-Forwarded-For", "::ffff:203.0.113.7", "10.0.0.5:4000", "203.0.113.7"},
	} {
		r := &http.Request{Header: http.Header{}, RemoteAddr: tc.peer}
		if tc.value != "" {
			r.Header.Set("X-Real-IP", tc.value)
			r.Header.Set("X-Forwarded-For", tc.value)
		}
		if got := (clientAddr{header: tc.header}).of(r); got != tc.want {
			t.Errorf("%s %q from %s: %q, want %q", tc.header, tc.value, tc.peer, got, tc.want)
		}
	}
}
