package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxResponseBytes bounds how much of a completion response is read: a
// reply is at most a few thousand characters, so anything much larger is
// a broken or hostile endpoint.
const maxResponseBytes = 1 << 20

// Errors a Backend returns for answers that are not answers.
var (
	// ErrRefused: the model declined to answer (message.refusal set).
	ErrRefused = errors.New("the model refused")
	// ErrEmpty: the response had no choices or no text.
	ErrEmpty = errors.New("empty completion")
)

// Turn is one message of a conversation given to a model.
type Turn struct {
	Role    string `json:"role"` // "system", "user" or "assistant"
	Content string `json:"content"`
}

// OpenAI is a Backend for any OpenAI-compatible chat-completions API
// (OpenAI, Azure-style proxies, Ollama, llama.cpp, vLLM, LM Studio, …).
type OpenAI struct {
	// BaseURL is the API's base, the part before "/chat/completions":
	// "https://api.openai.com/v1", "http://localhost:11434/v1".
	BaseURL string
	// Key is sent as "Authorization: Bearer <Key>"; empty sends no header
	// (local servers usually need none).
	Key string
	// Model is the model name sent with each request.
	Model string
	// Client makes the requests; nil is http.DefaultClient. The caller's
	// context bounds each call, so it needs no timeout of its own.
	Client *http.Client
}

var _ Backend = (*OpenAI)(nil)

type completionRequest struct {
	Model    string `json:"model"`
	Messages []Turn `json:"messages"`
}

type completionResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
			Refusal string `json:"refusal"`
		} `json:"message"`
	} `json:"choices"`
}

// Complete posts the conversation to {BaseURL}/chat/completions and
// returns the first choice's text. Failures are errors (ErrRefused and
// ErrEmpty among them) for the caller to turn into an apology.
func (o *OpenAI) Complete(ctx context.Context, turns []Turn) (string, error) {
	body, err := json.Marshal(completionRequest{Model: o.Model, Messages: turns})
	if err != nil {
		return "", err
	}
	url := strings.TrimRight(o.BaseURL, "/") + "/chat/completions"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if o.Key != "" {
		req.Header.Set("Authorization", "Bearer "+o.Key)
	}
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading the response: %w", err)
	}
	if len(data) > maxResponseBytes {
		return "", fmt.Errorf("response over %d bytes", maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, snippet(data))
	}
	var out completionResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return "", fmt.Errorf("malformed response: %w", err)
	}
	if len(out.Choices) == 0 {
		return "", ErrEmpty
	}
	msg := out.Choices[0].Message
	if strings.TrimSpace(msg.Refusal) != "" {
		return "", fmt.Errorf("%w: %s", ErrRefused, snippet([]byte(msg.Refusal)))
	}
	text := strings.TrimSpace(msg.Content)
	if text == "" {
		return "", ErrEmpty
	}
	return text, nil
}

// snippet is the start of an error body, for a log line.
func snippet(b []byte) string {
	const n = 200
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
