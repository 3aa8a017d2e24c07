package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/sitemove"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// siteMoveTimeout bounds a cross-site move started from the page. The move
// goes on when the page goes away (it is the operator's decision, and
// leaving half a handoff would need another move to finish it).
const siteMoveTimeout = 3 * time.Minute

// SiteMoveRequest is the body of POST /api/site-move.
type SiteMoveRequest struct {
	// Site is the workload's home site: the one that declares it.
	Site     string `json:"site"`
	Workload string `json:"workload"`
	// To is the site it should run in: the home site or another one.
	To string `json:"to"`
}

// SiteMoveLine is one line of POST /api/site-move's answer (newline
// delimited JSON): progress lines, then a result or an error.
type SiteMoveLine struct {
	Progress string           `json:"progress,omitempty"`
	Result   *sitemove.Result `json:"result,omitempty"`
	Error    *apiError        `json:"error,omitempty"`
}

type apiError struct {
	Code    int32  `json:"code"`
	Message string `json:"message"`
}

// moves admits one move per workload at a time.
type moves struct {
	mu     sync.Mutex
	active map[string]bool
}

func newMoves() *moves { return &moves{active: map[string]bool{}} }

func (m *moves) begin(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active[key] {
		return false
	}
	m.active[key] = true
	return true
}

func (m *moves) end(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.active, key)
}

// siteMove serves POST /api/site-move: it runs the same cross-site move as
// `cefiotctl move WORKLOAD -to-site SITE`, through both sites' scheduler REST
// APIs. A move the schedulers refuse at once (a workload that cannot
// leave its site, an unknown site) is answered with the API's error and
// status; a move that starts streams its steps as they happen.
func (h *Handler) siteMove(w http.ResponseWriter, r *http.Request) {
	var req SiteMoveRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeStatus(w, status.Errorf(codes.InvalidArgument, "body: %v", err))
		return
	}
	for _, f := range []struct{ name, v string }{{"site", req.Site}, {"workload", req.Workload}, {"to", req.To}} {
		if f.v == "" {
			writeStatus(w, status.Errorf(codes.InvalidArgument, "%s: required", f.name))
			return
		}
	}
	schedulers := h.siteSchedulers(r.Context())
	home, ok := schedulers[req.Site]
	if !ok {
		writeStatus(w, status.Errorf(codes.InvalidArgument, "site: no scheduler of site %q answers (sites: %v)", req.Site, keys(schedulers)))
		return
	}
	got, err := home.Client.GetWorkload(r.Context(), &cefiotv1.GetWorkloadRequest{Name: req.Workload})
	if err != nil {
		writeStatus(w, fmt.Errorf("workload %s in site %s: %w", req.Workload, req.Site, err))
		return
	}
	remoteName := req.To
	if req.To == req.Site {
		remoteName = got.GetWorkload().GetSite()
		if remoteName == "" || remoteName == req.Site {
			writeLines(w, SiteMoveLine{Result: &sitemove.Result{From: req.Site, To: req.Site}})
			return
		}
	}
	remote, ok := schedulers[remoteName]
	if !ok {
		writeStatus(w, status.Errorf(codes.InvalidArgument, "to: no scheduler of site %q answers (sites: %v)", remoteName, keys(schedulers)))
		return
	}
	key := req.Site + "/" + req.Workload
	if !h.moves.begin(key) {
		writeStatus(w, status.Errorf(codes.Aborted, "a move of %s (site %s) is already under way", req.Workload, req.Site))
		return
	}

	lines := make(chan SiteMoveLine, 64)
	go func() {
		defer h.moves.end(key)
		defer close(lines)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), siteMoveTimeout)
		defer cancel()
		go func() {
			select {
			case <-h.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		res, err := sitemove.Move(ctx, home, remote, req.Workload, req.To, func(step string) {
			h.logger.Info("site move", "workload", req.Workload, "site", req.Site, "to", req.To, "step", step)
			select {
			case lines <- SiteMoveLine{Progress: step}:
			default: // the page is not reading; the log has it
			}
		})
		if err != nil {
			h.logger.Warn("site move failed", "workload", req.Workload, "site", req.Site, "to", req.To, "err", err)
			lines <- SiteMoveLine{Error: toAPIError(err)}
			return
		}
		lines <- SiteMoveLine{Result: res}
	}()

	// Refused before the first step: answer with the error's status.
	first, ok := <-lines
	if ok && first.Error != nil {
		writeStatus(w, status.Error(codes.Code(first.Error.Code), first.Error.Message))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for line := first; ok; line, ok = <-lines {
		if enc.Encode(line) != nil || rc.Flush() != nil {
			return // the page went away; the move goes on
		}
	}
}

// siteSchedulers maps each site to a scheduler target that answers for it.
func (h *Handler) siteSchedulers(ctx context.Context) map[string]sitemove.Site {
	out := map[string]sitemove.Site{}
	for _, s := range h.collector.sites(ctx) {
		out[s.Site] = sitemove.Site{Name: s.Site, Client: restScheduler{base: h.collector.url(s.Scheduler), client: h.collector.client}}
	}
	return out
}

func keys(m map[string]sitemove.Site) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func toAPIError(err error) *apiError {
	if errors.Is(err, sitemove.ErrNotPlaced) {
		return &apiError{Code: int32(codes.FailedPrecondition), Message: err.Error()}
	}
	if st, ok := status.FromError(err); ok {
		return &apiError{Code: int32(st.Code()), Message: st.Message()}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Code: int32(codes.DeadlineExceeded), Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &apiError{Code: int32(codes.Canceled), Message: err.Error()}
	}
	// sitemove's own refusals (wrong kind, wrong home site) are plain
	// errors: the request cannot succeed as made.
	return &apiError{Code: int32(codes.FailedPrecondition), Message: err.Error()}
}

// writeStatus answers with err's gRPC status in the gateway's error shape.
func writeStatus(w http.ResponseWriter, err error) {
	e := toAPIError(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(runtime.HTTPStatusFromCode(codes.Code(e.Code)))
	_ = json.NewEncoder(w).Encode(e)
}

func writeLines(w http.ResponseWriter, lines ...SiteMoveLine) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, l := range lines {
		_ = enc.Encode(l)
	}
}
