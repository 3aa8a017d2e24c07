package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cefiot/cefiot/libs/pipeline"
)

// The page gets everything it shows, except the events gallery (which
// depends on the page's filter), from one server-sent event stream,
// GET /api/stream: a "snapshot" event once a second and at once when a
// scheduler reports an assignment change. The snapshots are gathered here
// from the services' REST APIs, only while at least one page listens.

// Snapshot is one "snapshot" event of /api/stream.
type Snapshot struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Sites, edge sites first, the cloud last.
	Sites []SiteState `json:"sites"`
	// Services holds, by target name, what each worker's admin API
	// reported (only targets that are a worker of some site).
	Services map[string]*ServiceState `json:"services"`
	// Topics names the topic each stage writes, for the page's links
	// (from libs/pipeline).
	Topics map[string]string `json:"topics"`
}

// SiteState is what a site's scheduler reports. The lists are the REST
// answers' lists, unchanged.
type SiteState struct {
	Site        string          `json:"site"`
	Scheduler   string          `json:"scheduler"` // target name
	Leader      string          `json:"leader"`
	Nodes       json.RawMessage `json:"nodes"`
	Workers     json.RawMessage `json:"workers"`
	Workloads   json.RawMessage `json:"workloads"`
	Assignments json.RawMessage `json:"assignments"`
}

// ServiceState is one worker's admin answers.
type ServiceState struct {
	Kind    string          `json:"kind"`
	Status  json.RawMessage `json:"status,omitempty"`  // GET /v1/<kind>/status
	Cameras json.RawMessage `json:"cameras,omitempty"` // capture: GET /v1/cameras, its list
	Stats   json.RawMessage `json:"stats,omitempty"`   // sink: GET /v1/stats
	Sites   json.RawMessage `json:"sites,omitempty"`   // sink: GET /v1/sites, its list
	Error   string          `json:"error,omitempty"`   // the first call that failed
}

// statusPath is each worker kind's status call.
var statusPath = map[string]string{
	pipeline.KindCapture: "/v1/capture/status",
	pipeline.KindEnrich:  "/v1/enrich/status",
	pipeline.KindBridge:  "/v1/bridge/status",
	pipeline.KindSink:    "/v1/sink/status",
}

const (
	snapshotInterval = time.Second
	callTimeout      = 3 * time.Second
	watchRetry       = 2 * time.Second
)

// collector gathers snapshots while subscribers listen.
type collector struct {
	targets  []Target
	client   *http.Client
	interval time.Duration // between snapshots when nothing wakes the loop

	mu     sync.Mutex
	subs   map[chan []byte]struct{}
	cancel context.CancelFunc // of the running gather loop, nil when idle
	seq    uint64
	last   []byte
	lastAt time.Time
	wake   chan struct{}
}

func newCollector(targets []Target, client *http.Client) *collector {
	return &collector{
		targets:  targets,
		client:   client,
		interval: snapshotInterval,
		subs:     map[chan []byte]struct{}{},
		wake:     make(chan struct{}, 1),
	}
}

// subscribe returns a channel of encoded snapshots (the newest one wins
// when the reader is slow) and the function that ends the subscription.
func (c *collector) subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs[ch] = struct{}{}
	if c.last != nil && time.Since(c.lastAt) < 2*c.interval {
		ch <- c.last
	}
	if c.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		go c.run(ctx)
	}
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.subs, ch)
		if len(c.subs) == 0 && c.cancel != nil {
			c.cancel()
			c.cancel = nil
		}
	}
}

// stop ends the gather loop.
func (c *collector) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
}

func (c *collector) run(ctx context.Context) {
	for _, t := range c.targets {
		if isScheduler(t.Name) {
			go c.watch(ctx, t)
		}
	}
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		snap := c.gather(ctx)
		if ctx.Err() != nil {
			return
		}
		c.publish(snap)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.wake:
		}
	}
}

func (c *collector) publish(snap *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	snap.Seq = c.seq
	b, err := json.Marshal(snap)
	if err != nil {
		return // cannot happen: the raw parts are valid JSON
	}
	c.last, c.lastAt = b, time.Now()
	for ch := range c.subs {
		select {
		case <-ch: // drop the one the reader has not taken yet
		default:
		}
		ch <- b
	}
}

// watch follows a scheduler's assignment stream and wakes the gather
// loop on every change, so a move shows without waiting for the tick.
func (c *collector) watch(ctx context.Context, t Target) {
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"/v1/assignments/watch", nil)
		if err != nil {
			return
		}
		if resp, err := c.client.Do(req); err == nil {
			if resp.StatusCode == http.StatusOK {
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 64<<10), 16<<20)
				for sc.Scan() {
					select {
					case c.wake <- struct{}{}:
					default:
					}
				}
			}
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(watchRetry):
		}
	}
}

func isScheduler(name string) bool { return strings.HasPrefix(name, "scheduler-") }

// isSinkTarget reports a sink's admin target: "sink", or a replica's
// "sink-2", "sink-3", ...
func isSinkTarget(name string) bool {
	return name == pipeline.KindSink || strings.HasPrefix(name, pipeline.KindSink+"-")
}

// getJSON GETs base+path and decodes the answer into out.
func (c *collector) getJSON(ctx context.Context, base, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %w", path, gatewayError(resp.StatusCode, b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// gather asks every scheduler, then every worker they list.
func (c *collector) gather(ctx context.Context) *Snapshot {
	snap := &Snapshot{Time: time.Now(), Services: map[string]*ServiceState{}, Topics: map[string]string{
		pipeline.KindCapture: pipeline.TopicFramesRaw, pipeline.KindEnrich: pipeline.TopicFramesEnriched,
	}}
	sites := c.sites(ctx)
	snap.Sites = sites

	byHost := map[string]string{}
	for _, t := range c.targets {
		if u, err := url.Parse(t.URL); err == nil {
			byHost[u.Host] = t.Name
		}
	}
	for _, s := range sites {
		var workers []struct {
			AdminHTTPAddress string   `json:"adminHttpAddress"`
			Kinds            []string `json:"kinds"`
		}
		_ = json.Unmarshal(s.Workers, &workers)
		for _, w := range workers {
			target, ok := byHost[w.AdminHTTPAddress]
			if !ok || snap.Services[target] != nil {
				continue
			}
			for _, k := range w.Kinds {
				if statusPath[k] != "" {
					snap.Services[target] = &ServiceState{Kind: k}
					break
				}
			}
		}
	}
	// Sinks sharing a PostgreSQL index run as replicas, without the
	// scheduler (they register nowhere): every sink target is asked.
	for _, t := range c.targets {
		if snap.Services[t.Name] == nil && isSinkTarget(t.Name) {
			snap.Services[t.Name] = &ServiceState{Kind: pipeline.KindSink}
		}
	}
	var wg sync.WaitGroup
	for name, st := range snap.Services {
		base := c.url(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.service(ctx, base, st)
		}()
	}
	wg.Wait()
	return snap
}

// service fills st from the worker at base.
func (c *collector) service(ctx context.Context, base string, st *ServiceState) {
	fail := func(err error) {
		if st.Error == "" && err != nil {
			st.Error = err.Error()
		}
	}
	fail(c.getJSON(ctx, base, statusPath[st.Kind], &st.Status))
	switch st.Kind {
	case pipeline.KindCapture:
		var r struct {
			Cameras json.RawMessage `json:"cameras"`
		}
		fail(c.getJSON(ctx, base, "/v1/cameras", &r))
		st.Cameras = r.Cameras
	case pipeline.KindSink:
		fail(c.getJSON(ctx, base, "/v1/stats", &st.Stats))
		var r struct {
			Sites json.RawMessage `json:"sites"`
		}
		fail(c.getJSON(ctx, base, "/v1/sites", &r))
		st.Sites = r.Sites
	}
}

func (c *collector) url(name string) string {
	for _, t := range c.targets {
		if t.Name == name {
			return t.URL
		}
	}
	return ""
}

// sites asks each scheduler target for its site's state. Several targets
// may serve one site (replicas): the first that answers wins.
func (c *collector) sites(ctx context.Context) []SiteState {
	var (
		mu  sync.Mutex
		out = map[string]SiteState{}
		wg  sync.WaitGroup
	)
	for _, t := range c.targets {
		if !isScheduler(t.Name) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.site(ctx, t)
			if err != nil {
				return // another replica may answer; a site with none is missing from the snapshot
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := out[s.Site]; !ok || t.Name < prev.Scheduler {
				out[s.Site] = s
			}
		}()
	}
	wg.Wait()
	list := make([]SiteState, 0, len(out))
	for _, s := range out {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool {
		ci, cj := list[i].Site == "cloud", list[j].Site == "cloud"
		if ci != cj {
			return cj
		}
		return list[i].Site < list[j].Site
	})
	return list
}

func (c *collector) site(ctx context.Context, t Target) (SiteState, error) {
	var leader struct {
		LeaderID string `json:"leaderId"`
		Site     string `json:"site"`
	}
	if err := c.getJSON(ctx, t.URL, "/v1/leader", &leader); err != nil {
		return SiteState{}, err
	}
	s := SiteState{Site: leader.Site, Scheduler: t.Name, Leader: leader.LeaderID}
	if s.Site == "" {
		s.Site = strings.TrimPrefix(t.Name, "scheduler-")
	}
	lists := []struct {
		path, field string
		into        *json.RawMessage
	}{
		{"/v1/nodes", "nodes", &s.Nodes},
		{"/v1/workers", "workers", &s.Workers},
		{"/v1/workloads", "workloads", &s.Workloads},
		{"/v1/assignments", "assignments", &s.Assignments},
	}
	errs := make([]error, len(lists))
	var wg sync.WaitGroup
	for i, l := range lists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body map[string]json.RawMessage
			if err := c.getJSON(ctx, t.URL, l.path, &body); err != nil {
				errs[i] = err
				return
			}
			*l.into = body[l.field]
		}()
	}
	wg.Wait()
	for i := range lists {
		if errs[i] != nil {
			return SiteState{}, errs[i]
		}
		if *lists[i].into == nil {
			*lists[i].into = json.RawMessage("[]")
		}
	}
	return s, nil
}
