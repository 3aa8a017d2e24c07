// Package cpu measures where a pipeline run spends CPU: the time each
// process used (from /proc, all threads, user and system), and, inside one
// Go process, how a CPU profile splits between named stages (decode,
// detect, encode, ...), so the benchmark can print CPU milliseconds per
// frame for every stage.
package cpu

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// ticksPerSecond is USER_HZ, the unit of utime and stime in /proc (fixed
// at 100 on Linux whatever the kernel's HZ).
const ticksPerSecond = 100

// ProcessTime is the CPU time (user + system, every thread) process pid has
// used so far.
func ProcessTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: fields are counted after
	// its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu time of pid %d: malformed stat %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time of pid %d: short stat %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu time of pid %d: bad utime/stime in %q", pid, s)
	}
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// TreeTime is the CPU time process pid and its children (one level: a
// server's worker processes, as PostgreSQL's backends are) have used so
// far; children that already exited are not counted.
func TreeTime(pid int) (time.Duration, error) {
	total, err := ProcessTime(pid)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("cpu time of the children of %d: %w", pid, err)
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid || parentOf(child) != pid {
			continue
		}
		if d, err := ProcessTime(child); err == nil {
			total += d
		}
	}
	return total, nil
}

// parentOf is the parent pid of pid (0 when it cannot be read).
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1]) // field 4
	return ppid
}

// Meter reads the CPU time of named processes at two moments.
type Meter struct {
	pids  map[string]int
	start map[string]time.Duration
}

// Start records the CPU time of each process (name -> pid) so far.
func Start(pids map[string]int) (*Meter, error) {
	m := &Meter{pids: pids, start: map[string]time.Duration{}}
	for name, pid := range pids {
		t, err := ProcessTime(pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m.start[name] = t
	}
	return m, nil
}

// Used returns the CPU time each process used since Start.
func (m *Meter) Used() (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for name, pid := range m.pids {
		t, err := ProcessTime(pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = t - m.start[name]
	}
	return out, nil
}

// Total returns the CPU time all the processes used since Start.
func (m *Meter) Total() (time.Duration, error) {
	used, err := m.Used()
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, d := range used {
		sum += d
	}
	return sum, nil
}

// Stage names a part of a process's work by the functions it runs: a CPU
// profile sample belongs to the first stage one of whose function name
// substrings appears in its stack.
type Stage struct {
	Name      string
	Functions []string
}

// Other is the stage of samples no Stage claims.
const Other = "other"

// Fetch takes a CPU profile of seconds from a Go process's
// /debug/pprof/profile.
func Fetch(ctx context.Context, client *http.Client, baseURL string, seconds int) (*profile.Profile, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", baseURL, seconds), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cpu profile from %s: %w", baseURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("cpu profile from %s: HTTP %d: %s", baseURL, resp.StatusCode, b)
	}
	p, err := profile.Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("cpu profile from %s: %w", baseURL, err)
	}
	return p, nil
}

// Split divides a CPU profile's time between stages (and Other).
func Split(p *profile.Profile, stages []Stage) map[string]time.Duration {
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			vi = i
		}
	}
	out := map[string]time.Duration{}
	if vi < 0 {
		return out
	}
	for _, s := range p.Sample {
		stage := Other
	stack:
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				for _, st := range stages {
					for _, f := range st.Functions {
						if strings.Contains(line.Function.Name, f) {
							stage = st.Name
							break stack
						}
					}
				}
			}
		}
		out[stage] += time.Duration(s.Value[vi])
	}
	return out
}
