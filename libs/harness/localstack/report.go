package localstack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// ReadStatus fetches a service's GET /v1/<service>/status.
func ReadStatus(ctx context.Context, client *http.Client, url string) (*cefiotv1.WorkerStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("status %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("status %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s: HTTP %d", url, resp.StatusCode)
	}
	var r cefiotv1.GetStatusResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("status %s: decode: %w", url, err)
	}
	return r.GetStatus(), nil
}

// PipelineReport says, one line per service process of the stack, where
// each stands: its lease, its workloads (with their last error) and its
// counters. Tests print it when the pipeline does not get where they
// wait for it to, so that the stage that stopped shows.
func (s *Stack) PipelineReport(ctx context.Context) string {
	var b strings.Builder
	for _, name := range s.ServiceNames() {
		if strings.HasPrefix(name, "scheduler") {
			continue
		}
		service, _, _ := strings.Cut(name, "@")
		service = strings.TrimSuffix(service, "-cloud")
		if strings.HasPrefix(service, "sink-") {
			service = "sink"
		}
		st, err := ReadStatus(ctx, s.opHTTP, fmt.Sprintf("%s/v1/%s/status", s.HTTP(name), service))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", name, err)
			continue
		}
		fmt.Fprintf(&b, "%s: registered=%v", name, st.GetRegistered())
		for _, w := range st.GetWorkloads() {
			fmt.Fprintf(&b, " [%s epoch %d since %s", w.GetName(), w.GetEpoch(), w.GetStartedTime().AsTime().Format("15:04:05.000"))
			if e := w.GetLastError(); e != "" {
				fmt.Fprintf(&b, " last error: %s", e)
			}
			b.WriteString("]")
		}
		keys := make([]string, 0, len(st.GetCounters()))
		for k := range st.GetCounters() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if v := st.GetCounters()[k]; v != 0 {
				fmt.Fprintf(&b, " %s=%d", k, v)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
