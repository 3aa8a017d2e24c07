package console

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/audit"
)

// The console audits what it does itself and what it refuses: logins
// (failed ones too), logouts, API tokens and users made or removed, site
// moves, and every state-changing request it refuses (another origin, no
// login, a role that may not). A request it passes on to a service is
// audited by that service, for the person the console acts for.

// auditNote is what the handlers know about a request for its record:
// the person (once known), what it acts on, and whether it went on to a
// service.
type auditNote struct {
	who, role, target string
	passedOn          bool
}

type auditNoteKey struct{}

// noteOf is r's audit note (a throwaway one outside the auditor).
func noteOf(ctx context.Context) *auditNote {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		return n
	}
	return &auditNote{}
}

// auditor appends a record of each state-changing request to sink.
type auditor struct {
	site string
	sink audit.Sink
	now  func() time.Time
}

func (a auditor) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains([]string{http.MethodGet, http.MethodHead, http.MethodOptions}, r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		n := &auditNote{}
		sw := &recordingWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, n)))
		if n.passedOn {
			return
		}
		rec := audit.Record{
			Time: a.now().UTC(), Site: a.site, Who: n.who, Role: n.role, Service: "console",
			Action: r.Method + " " + r.URL.Path, Target: n.target, From: r.RemoteAddr,
			Result: audit.ResultOK, Code: strconv.Itoa(sw.code),
		}
		if rec.Who == "" {
			rec.Who, rec.Role = "unauthenticated", "none"
		}
		switch {
		case sw.code >= 500:
			rec.Result, rec.Message = audit.ResultFailed, sw.message()
		case sw.code >= 400:
			rec.Result, rec.Message = audit.ResultRefused, sw.message()
		}
		a.sink.Append(r.Context(), rec)
	})
}

// recordingWriter keeps the status and the start of an error's body.
type recordingWriter struct {
	http.ResponseWriter
	code int
	body []byte
}

const keptErrorBytes = 300

func (w *recordingWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.code >= 400 && len(w.body) < keptErrorBytes {
		w.body = append(w.body, b[:min(len(b), keptErrorBytes-len(w.body))]...)
	}
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// message is the error the client was given: the gateway shape's message,
// or the plain text.
func (w *recordingWriter) message() string {
	var e struct{ Message string }
	if json.Unmarshal(w.body, &e) == nil && e.Message != "" {
		return e.Message
	}
	return strings.TrimSpace(string(w.body))
}
