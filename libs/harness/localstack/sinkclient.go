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
// A wait that fails carries the stack's PipelineReport.
func (s *Stack) WaitSink(ctx context.Context, cond func(SinkStatus) bool, onChange func(SinkStatus)) (SinkStatus, error) {
	st, err := WaitSink(ctx, s.opHTTP, s.SinkHTTP(), cond, onChange)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = fmt.Errorf("%w; the pipeline at that point:\n%s", err, s.PipelineReport(rctx))
	}
	return st, err
}

// ReadCounters reads the counters of a status URL of the stack, as its
// operator.
func (s *Stack) ReadCounters(ctx context.Context, url string) (map[string]int64, error) {
	return ReadCounters(ctx, s.opHTTP, url)
}

// WaitStoredFrames polls the sink's GET /v1/stats until the store holds at
// least n frames, and returns how many it holds. It counts what the store
// holds, not what one sink process stored: a sink restarted in between
// does not hide the frames stored before. A wait that fails carries the
// stack's PipelineReport.
func (s *Stack) WaitStoredFrames(ctx context.Context, n int64) (int64, error) {
	var last int64 = -1
	var lastErr error
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		frames, err := s.storedFrames(ctx)
		if err == nil {
			last = frames
			if frames >= n {
				return frames, nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return last, fmt.Errorf("waiting for %d frames in the store (it held %d; last error %v): %w; the pipeline at that point:\n%s",
				n, last, lastErr, ctx.Err(), s.PipelineReport(rctx))
		case <-t.C:
		}
	}
}

func (s *Stack) storedFrames(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.SinkHTTP()+"/v1/stats", nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.opHTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sink stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("sink stats: HTTP %d", resp.StatusCode)
	}
	var body struct {
		Frames string `json:"frames"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("sink stats: decode: %w", err)
	}
	if body.Frames == "" {
		return 0, nil // protojson leaves out a zero
	}
	return strconv.ParseInt(body.Frames, 10, 64)
}
