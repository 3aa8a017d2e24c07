// Package console serves the operator console: one page (plain HTML, CSS
// and JavaScript, embedded in the binary, nothing fetched from elsewhere)
// that shows every site's pipeline, nodes, workers, assignments, bridge,
// cameras and stored events, and drives the admin actions.
//
// The page talks only to the services' public REST APIs (grpc-gateway),
// through this handler, so the browser needs one origin:
//
//	GET  /                         the page and its assets
//	GET  /api/targets              the admin targets: [{"name", "url"}]
//	GET  /api/stream               server-sent "snapshot" events (see Snapshot)
//	POST /api/site-move            moves a workload between sites (see siteMove)
//	ANY  /api/<target>/<path>      proxied to <target's url>/<path>
//
// Targets are named by the caller (for the local stack: its process names,
// "scheduler-edge", "capture@node-1", "sink", ...). The page discovers the
// rest from the schedulers: a target whose name starts with "scheduler-" is
// a site's scheduler; workers are matched to targets by their admin HTTP
// address.
package console

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
)

//go:embed static
var static embed.FS

// Target is one service admin endpoint the console may reach.
type Target struct {
	Name string `json:"name"`
	URL  string `json:"url"` // REST base URL, e.g. http://127.0.0.1:8100
}

// Handler serves the console for targets.
type Handler struct {
	mux       *http.ServeMux
	client    *http.Client
	targets   []Target
	proxies   map[string]*httputil.ReverseProxy
	logger    *slog.Logger
	collector *collector
	moves     *moves
	done      chan struct{} // closed by Close: streams end, moves are cancelled
	closeOnce sync.Once
}

// New returns the console handler. Target names must be unique, non-empty
// and free of "/"; URLs must be absolute http(s) URLs. client calls the
// targets (with the console's identity in each site; nil: plain HTTP).
func New(targets []Target, logger *slog.Logger, client *http.Client) (*Handler, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if client == nil {
		client = &http.Client{}
	}
	h := &Handler{client: client, mux: http.NewServeMux(), proxies: map[string]*httputil.ReverseProxy{}, logger: logger, moves: newMoves(), done: make(chan struct{})}
	for _, t := range targets {
		if t.Name == "" || strings.ContainsAny(t.Name, "/?#") {
			return nil, fmt.Errorf("console: target name %q: want a non-empty name without / ? #", t.Name)
		}
		if _, dup := h.proxies[t.Name]; dup {
			return nil, fmt.Errorf("console: target %q given twice", t.Name)
		}
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("console: target %q: url %q: want http://host:port", t.Name, t.URL)
		}
		h.proxies[t.Name] = h.proxy(t.Name, u)
		h.targets = append(h.targets, Target{Name: t.Name, URL: strings.TrimSuffix(t.URL, "/")})
	}
	sort.Slice(h.targets, func(i, j int) bool { return h.targets[i].Name < h.targets[j].Name })
	h.collector = newCollector(h.targets, client)

	assets, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("console: embedded assets: %w", err)
	}
	files := http.FileServerFS(assets)
	h.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// The page changes with the binary: always revalidate.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	h.mux.HandleFunc("/api/targets", h.listTargets)
	h.mux.HandleFunc("GET /api/stream", h.stream)
	h.mux.HandleFunc("POST /api/site-move", h.siteMove)
	h.mux.HandleFunc("/api/{target}/{path...}", h.forward)
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close ends the open streams and cancels site moves in progress (a move
// is safe to start again: it continues the handoff it finds).
func (h *Handler) Close() {
	h.closeOnce.Do(func() {
		close(h.done)
		h.collector.stop()
	})
}

// stream serves /api/stream: a "snapshot" event whenever the collector has
// a new one, until the page goes away.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	ch, unsubscribe := h.collector.subscribe()
	defer unsubscribe()
	p, _ := personOf(r.Context())
	// The browser reconnects on its own after a lost connection.
	if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case b := <-ch:
			if p.cameras != nil {
				b = scopeSnapshot(b, p.cameras)
			}
			if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// Targets returns the targets, sorted by name.
func (h *Handler) Targets() []Target { return append([]Target(nil), h.targets...) }

func (h *Handler) listTargets(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"targets": h.targets})
}

// forward proxies /api/<target>/v1/... to the target. Only the REST API
// (/v1/...) is reachable: the console has no business with anything else.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request) {
	name, path := r.PathValue("target"), r.PathValue("path")
	p := h.proxies[name]
	if p == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("console: no target %q", name))
		return
	}
	if !strings.HasPrefix(path, "v1/") {
		writeError(w, http.StatusNotFound, fmt.Sprintf("console: only /v1/ paths are proxied, not /%s", path))
		return
	}
	noteOf(r.Context()).passedOn = true // the service audits it
	p.ServeHTTP(w, r)
}

func (h *Handler) proxy(name string, base *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			actFor(pr.In.Context(), pr.Out.Header)
			pr.Out.URL.Scheme, pr.Out.URL.Host = base.Scheme, base.Host
			pr.Out.URL.Path = strings.TrimSuffix(base.Path, "/") + "/" + pr.In.PathValue("path")
			pr.Out.URL.RawPath = ""
			pr.Out.Host = base.Host
		},
		Transport: h.client.Transport,
		// Streaming calls (the scheduler's watch) are passed on as they come.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(r.Context().Err(), err) || r.Context().Err() != nil {
				return // the browser went away
			}
			h.logger.Debug("console proxy", "target", name, "err", err)
			noteOf(r.Context()).passedOn = false // it never reached the service: the console audits it
			writeError(w, http.StatusBadGateway, fmt.Sprintf("%s unreachable: %v", name, err))
		},
	}
}

// writeError answers in the gateway's error shape, so the page shows the
// proxy's errors like the APIs' own.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": 14, "message": msg})
}
