package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Webhook headers.
const (
	// HeaderSignature is "sha256=<hex HMAC-SHA256 of the body>" under the
	// -webhook-secret-file key, when one is set.
	HeaderSignature = "X-Cefiot-Signature-256"
	// HeaderEventType is the event's type (new, end).
	HeaderEventType = "X-Cefiot-Event-Type"
	// HeaderDelivery is "<event id>:<type>": the same on every retry of one
	// delivery, so a receiver can drop repeats.
	HeaderDelivery = "X-Cefiot-Delivery"
)

// Webhook POSTs events as JSON to one https:// URL.
type Webhook struct {
	url    string
	name   string
	secret []byte
	client *http.Client
}

var _ Target = (*Webhook)(nil)

// NewWebhook prepares a webhook target; tlsCfg holds the roots its
// certificate must chain to.
func NewWebhook(rawURL string, tlsCfg *tls.Config, secret string) *Webhook {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &Webhook{url: rawURL, name: "webhook " + redactedURL(rawURL), secret: []byte(secret),
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, not a delivery
		}}}
}

// Name names the webhook without its query (which may hold a token).
func (w *Webhook) Name() string { return w.name }

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Send POSTs ev. A 2xx answer delivers it; 408, 429 and 5xx (and no
// answer) are retried; any other answer refuses the event for good.
func (w *Webhook) Send(ctx context.Context, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return Permanent(fmt.Errorf("encode event: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cefiot-notify")
	req.Header.Set(HeaderEventType, ev.Type)
	req.Header.Set(HeaderDelivery, ev.EventID+":"+ev.Type)
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if len(w.secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(w.secret, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// The client's error names the URL, query included: keep it out.
		return fmt.Errorf("POST %s: %w", w.name, unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("POST %s: %s", w.name, resp.Status)
	default:
		return Permanent(fmt.Errorf("POST %s: refused: %s", w.name, resp.Status))
	}
}

// unwrapURLError drops the URL a *url.Error repeats.
func unwrapURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}
