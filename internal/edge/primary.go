package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/clusterapi"
)

// primary calls the primary's cluster API.
type primary struct {
	base   *url.URL
	secret string
	http   *http.Client
}

func newPrimary(base *url.URL, secret string) *primary {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &primary{base: base, secret: secret, http: &http.Client{Transport: t}}
}

func (p *primary) url(path string, q url.Values) string {
	u := *p.base
	u.Path = strings.TrimSuffix(u.Path, "/") + clusterapi.Prefix + path
	u.RawQuery = q.Encode()
	return u.String()
}

// request sends a cluster API request; the caller closes the body.
func (p *primary) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url(path, q), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return p.http.Do(req)
}

// call sends a request and decodes the reply into out (nil: none). A
// chat error from the primary comes back as such; a primary that cannot
// be reached is internal.
func (p *primary) call(ctx context.Context, method, path string, q url.Values, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp, err := p.request(ctx, method, path, q, body)
	if err != nil {
		return fmt.Errorf("edge: the primary did not answer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error *clusterapi.Error `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) == nil && e.Error != nil && e.Error.Code != "" && e.Error.Code != chat.CodeInternal {
			return e.Error.ChatError()
		}
		return fmt.Errorf("edge: the primary answered %s %s with %d: %s", method, path, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
