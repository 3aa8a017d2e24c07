// Package audit keeps the trail of every state-changing call to a site's
// admin APIs: who (the verified identity, and through which component when
// one acts for a person), what (the method) on what (the request's named
// fields), when, from where, and with which result, refused calls too. The
// records are JSON, one per Kafka record in the site's topic
// pipeline.TopicAudit, so `kcat -C -t audit` reads them, and each is also
// logged.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cefiot/cefiot/libs/redact"
)

// Record is one audited call.
type Record struct {
	Time time.Time `json:"time"`
	Site string    `json:"site"`
	// Who is the caller's identity (spiffe://<site>/<component>), or
	// "unauthenticated".
	Who string `json:"who"`
	// Role is the caller's role (operator, admin, viewer, worker, ...).
	Role string `json:"role"`
	// Via is the component that acted for Who (the console), if any.
	Via string `json:"via,omitempty"`
	// Service is the process that served the call (scheduler, bridge...).
	Service string `json:"service"`
	// Action is the method: /cefiot.v1.SchedulerService/DrainNode, or
	// "POST /v1/nodes/n1/drain" for a call refused before it reached one.
	Action string `json:"action"`
	// Target names what the call acts on: the request's non-empty string
	// and number fields, "node=n1".
	Target string `json:"target,omitempty"`
	// From is the caller's network address.
	From string `json:"from,omitempty"`
	// Result is "ok" or "refused" (authentication or authorization) or
	// "failed" (allowed, but the call returned an error).
	Result string `json:"result"`
	// Code is the gRPC status code name, or the HTTP status.
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// Results.
const (
	ResultOK      = "ok"
	ResultRefused = "refused"
	ResultFailed  = "failed"
)

// Sink receives records. Append must not block the call it audits for long.
type Sink interface {
	Append(ctx context.Context, r Record)
}

// Encode is the record as its topic holds it.
func (r Record) Encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit record: %w", err)
	}
	return b, nil
}

// Decode reads a record of the topic.
func Decode(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("audit record: %w", err)
	}
	return r, nil
}

// Target summarizes what a request names: its top-level string, number and
// bool fields that are set, as "k=v" sorted by name (a spec's YAML is
// summarized by its size, not copied).
func Target(req any) string {
	m, ok := req.(proto.Message)
	if !ok || m == nil {
		return ""
	}
	var parts []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.IsList() || fd.IsMap() {
			return true
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			s := redact.URL(v.String()) // a camera URL's password never reaches the trail
			if len(s) > 64 || strings.ContainsAny(s, "\n") {
				s = fmt.Sprintf("<%d bytes>", len(s))
			}
			parts = append(parts, string(fd.Name())+"="+s)
		case protoreflect.BoolKind, protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Uint32Kind,
			protoreflect.Uint64Kind, protoreflect.DoubleKind, protoreflect.FloatKind, protoreflect.EnumKind:
			parts = append(parts, fmt.Sprintf("%s=%v", fd.Name(), v.Interface()))
		case protoreflect.MessageKind:
			if inner := Target(v.Message().Interface()); inner != "" {
				parts = append(parts, string(fd.Name())+"{"+inner+"}")
			}
		}
		return true
	})
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// Log is a Sink that only logs (a process without Kafka, or tests).
type Log struct{ Logger *slog.Logger }

// Append logs r.
func (l Log) Append(ctx context.Context, r Record) { logRecord(ctx, l.Logger, r) }

func logRecord(ctx context.Context, logger *slog.Logger, r Record) {
	logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("who", r.Who), slog.String("role", r.Role), slog.String("via", r.Via),
		slog.String("action", r.Action), slog.String("target", r.Target), slog.String("from", r.From),
		slog.String("result", r.Result), slog.String("code", r.Code))
}
