package edge

import (
	"crypto/subtle"
	"io"
	"net/http"
	"strings"

	"pocketchat/internal/gateway"
)

// metricsAccess guards an edge's /api/chat/metrics as the primary guards
// its own: a scraper with CHAT_METRICS_TOKEN as a bearer token, or a
// superuser. An edge has no accounts, so it asks the primary whether the
// credentials may read the primary's metrics, and answers with the
// primary's refusal if not.
type metricsAccess struct {
	token   string
	primary *primary
}

func (a metricsAccess) wrap(h http.Handler) http.Handler {
	want := []byte(a.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if got, ok := strings.CutPrefix(auth, "Bearer "); ok && len(want) > 0 && subtle.ConstantTimeCompare([]byte(got), want) == 1 {
			h.ServeHTTP(w, r)
			return
		}
		if auth == "" {
			writeRefusal(w, &gateway.Refusal{Status: http.StatusUnauthorized, Message: "The request requires valid record authorization token."})
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, a.primary.base.JoinPath("/api/chat/metrics").String(), nil)
		if err != nil {
			writeRefusal(w, err)
			return
		}
		req.Header.Set("Authorization", auth)
		resp, err := a.primary.http.Do(req)
		if err != nil {
			writeRefusal(w, &gateway.Refusal{Status: http.StatusBadGateway, Message: "The primary cannot be reached to check the credentials."})
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			_, _ = io.Copy(io.Discard, resp.Body)
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 64<<10))
	})
}
