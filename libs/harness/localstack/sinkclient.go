package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// SinkStatus is the part of the sink's REST status the stack watches.
type SinkStatus struct {
	Stored     int64
	Duplicates int64
	RecordsIn  int64
}

// ReadCounters fetches a service's GET /v1/<service>/status and returns
// its counters.
func ReadCounters(ctx context.Context, client *http.Client, url string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("status %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s: HTTP %d", url, resp.StatusCode)
	}
	var body struct {
		Status struct {
			Counters map[string]string `json:"counters"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("status %s: decode: %w", url, err)
	}
	out := map[string]int64{}
	for k, v := range body.Status.Counters {
		out[k], _ = strconv.ParseInt(v, 10, 64)
	}
	return out, nil
}

// ReadSinkStatus fetches GET /v1/sink/status.
func ReadSinkStatus(ctx context.Context, client *http.Client, baseURL string) (SinkStatus, error) {
	c, err := ReadCounters(ctx, client, baseURL+"/v1/sink/status")
	if err != nil {
		return SinkStatus{}, err
	}
	return SinkStatus{Stored: c["stored"], Duplicates: c["duplicates"], RecordsIn: c["records_in"]}, nil
}

// WaitSink polls the sink status until cond holds or ctx ends. It reports
// every change of the status to onChange (may be nil).
func WaitSink(ctx context.Context, client *http.Client, baseURL string, cond func(SinkStatus) bool, onChange func(SinkStatus)) (SinkStatus, error) {
	var last SinkStatus
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := ReadSinkStatus(ctx, client, baseURL)
		if err == nil {
			if st != last && onChange != nil {
				onChange(st)
			}
			last = st
			if cond(st) {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("waiting for the sink (last status %+v): %w", last, ctx.Err())
		case <-t.C:
		}
	}
}

// WaitSink is WaitSink on the stack's sink, as its operator.
func (s *Stack) WaitSink(ctx context.Context, cond func(SinkStatus) bool, onChange func(SinkStatus)) (SinkStatus, error) {
	return WaitSink(ctx, s.opHTTP, s.SinkHTTP(), cond, onChange)
}

// ReadCounters reads the counters of a status URL of the stack, as its
// operator.
func (s *Stack) ReadCounters(ctx context.Context, url string) (map[string]int64, error) {
	return ReadCounters(ctx, s.opHTTP, url)
}
