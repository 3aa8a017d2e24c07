package e2e

import (
	"gopkg.in/yaml.v3"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/console/users"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/onnxgen"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// browserTool returns the repository root once node, Chromium and the
// pinned playwright-core (web/e2e, `make web-e2e`) are there; without them
// the test is skipped, unless CEFIOT_REQUIRE_BROWSER=1 (make test) makes
// their absence a failure.
func browserTool(t *testing.T) (root, chromium string) {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := kafkalocal.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	chromium = os.Getenv("CEFIOT_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install nodejs)")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join(root, "web", "e2e", "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "web/e2e/node_modules/playwright-core (make web-e2e)")
	}
	if len(missing) > 0 {
		if os.Getenv("CEFIOT_REQUIRE_BROWSER") == "1" {
			t.Fatalf("browser test needs: %s", strings.Join(missing, ", "))
		}
		t.Skipf("browser test needs: %s", strings.Join(missing, ", "))
	}
	return root, chromium
}

// TestConsoleInBrowser runs the local default (bin/cefiot-local, with two
// simulated edge nodes and free ports), opens the console URL it prints and
// drives the page in headless Chromium: it loads without console errors,
// shows all five stages placed and healthy, shows an event of the sample
// video and opens it with its frames and boxes, receives new snapshots from
// the event stream without polling, filters events by time, camera and
// kind of object (labels from an ONNX detector given by path),
// moves enrich to the cloud site and back, drains the node that runs enrich
// and shows enrich on the other node, and shows the API's error when an
// action is refused. Screenshots go to web/e2e/screenshots
// (CEFIOT_UPDATE_DOCS=1 also copies the overview to docs/console.png).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on the real stack; skipped with -short")
	}
	root, chromium := browserTool(t)
	kafkatest.Libs(t) // skips (or fails under make test) without the Kafka jars
	dir := t.TempDir()
	spec := videogen.DefaultSpec()
	video := filepath.Join(dir, "sample.avi")
	if err := videogen.Write(video, spec); err != nil {
		t.Fatal(err)
	}
	// Labels come from an ONNX detector given by path, as an operator
	// gives one: a generated grid detector (onnxgen) at enrich's default
	// input size, so that the events have kinds of object to filter by.
	model, classes := filepath.Join(dir, "grid.onnx"), filepath.Join(dir, "grid.names")
	if err := (onnxgen.GridDetector{Input: 640, Grid: 8}).Write(model); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(classes, []byte(strings.Join(onnxgen.Classes, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	local := startLocalDefault(ctx, t, root, "-video", video, "-edge-nodes", "2",
		"-detector", "onnx", "-detect-model", model, "-detect-classes", classes)
	if _, err := localstack.WaitSink(ctx, local.client, local.sink, func(s localstack.SinkStatus) bool {
		return s.Stored >= int64(spec.MotionFrames())
	}, nil); err != nil {
		t.Fatal(err)
	}
	label := eventLabel(ctx, t, local)

	shots := filepath.Join(root, "web", "e2e", "screenshots")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "node", "console.mjs")
	cmd.Dir = filepath.Join(root, "web", "e2e")
	// The browser logs in with the operator's client certificate.
	op := local.pki.Files(sitepki.Operator)
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+local.console, "SCREENSHOT_DIR="+shots, "CHROMIUM="+chromium,
		"CLIENT_CERT="+op.Cert, "CLIENT_KEY="+op.Key, "EVENT_LABEL="+label)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	t.Logf("browser run took %.1fs\n%s", time.Since(start).Seconds(), stdout.String())
	if runErr != nil {
		t.Fatalf("browser test failed: %v\n%s\n(screenshots in %s)", runErr, stderr.String(), shots)
	}

	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			steps[fmt.Sprint(m["step"])] = m
		}
	}
	if steps["ok"] == nil {
		t.Fatalf("browser test did not finish: %s", stdout.String())
	}
	// What the page showed after the drain is what the scheduler says.
	drain := steps["drain"]
	from, to := fmt.Sprint(drain["from"]), fmt.Sprint(drain["to"])
	node := enrichNode(ctx, t, local.client, local.edgeScheduler)
	if node != to || node == from {
		t.Errorf("page shows enrich on %q (drained %q), the scheduler has it on %q", to, from, node)
	}
	checkLoginInBrowser(ctx, t, root, chromium, shots, local)

	// Both site moves ran to the end: the cloud's copy is gone again.
	// The page's audit trail showed that drain, by the operator through the
	// console.
	if a := steps["audit"]; a == nil || !strings.Contains(fmt.Sprint(a["newest"]), "DrainNode") {
		t.Errorf("the page's audit trail did not show the drain: %v", a)
	}
	if steps["site-move"] == nil {
		t.Error("the page moved no workload between sites")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, local.cloudScheduler+"/v1/workloads/enrich.edge", nil)
	if resp, err := local.client.Do(req); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("after moving enrich back, the cloud still has enrich.edge (HTTP %d)", resp.StatusCode)
		}
	}
	if os.Getenv("CEFIOT_UPDATE_DOCS") == "1" {
		b, err := os.ReadFile(filepath.Join(shots, "console-overview.png"))
		if err == nil {
			err = os.WriteFile(filepath.Join(root, "docs", "console.png"), b, 0o644)
		}
		if err != nil {
			t.Errorf("update docs/console.png: %v", err)
		}
	}
}

// eventLabel is a kind of object the stored event was labelled with, as
// the sink's API lists it.
func eventLabel(ctx context.Context, t *testing.T, local localDefault) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, local.sink+"/v1/events", nil)
	resp, err := local.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Events []struct{ Labels []string }
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("events: %v: %s", err, body)
	}
	for _, e := range r.Events {
		if len(e.Labels) > 0 {
			return e.Labels[0]
		}
	}
	t.Fatalf("no stored event has a label, with an ONNX detector on: %s", body)
	return ""
}

func enrichNode(ctx context.Context, t *testing.T, client *http.Client, scheduler string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, scheduler+"/v1/assignments", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Assignments []struct{ Workload, Node string }
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("assignments: %v: %s", err, body)
	}
	for _, a := range r.Assignments {
		if a.Workload == "enrich" {
			return a.Node
		}
	}
	t.Fatalf("enrich is not assigned: %s", body)
	return ""
}

// localDefault is a running bin/cefiot-local: the URLs it printed.
type localDefault struct {
	console, sink, edgeScheduler, cloudScheduler string
	// adminPassword is the console user admin's, printed once; runDir is
	// the stack's run directory.
	adminPassword, runDir string
	// pki is the edge site's PKI; client calls as the operator of both
	// sites.
	pki    sitepki.Site
	client *http.Client
}

// startLocalDefault runs bin/cefiot-local with free ports and args, waits
// until it prints its URLs and stops it (Ctrl-C, as a user would) at the
// end of the test. Its log is shown when the test fails.
func startLocalDefault(ctx context.Context, t *testing.T, root string, args ...string) localDefault {
	t.Helper()
	bin := binDir(t)
	runDir := filepath.Join(t.TempDir(), "run")
	args = append([]string{"-bin-dir", bin, "-run-dir", runDir, "-free-ports", "-console-addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(filepath.Join(bin, "cefiot-local"), args...)
	cmd.Dir = root // it finds the Kafka jars from the repository
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil && !t.Failed() {
				t.Errorf("cefiot-local did not stop cleanly on Ctrl-C: %v", err)
			}
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			t.Errorf("cefiot-local still running 2 minutes after Ctrl-C")
		}
		if t.Failed() {
			t.Logf("---- cefiot-local log ----\n%s", tail(logs.String(), 60))
		}
	})
	var l localDefault
	field := func(line, prefix string) string {
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), prefix))
		return strings.Fields(rest)[0]
	}
	for l.console == "" || l.sink == "" || l.edgeScheduler == "" || l.cloudScheduler == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("cefiot-local ended before printing its URLs:\n%s", tail(logs.String(), 60))
			}
			trimmed := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(trimmed, "cefiot console:"):
				l.console = field(line, "cefiot console:")
			case strings.HasPrefix(trimmed, "console user admin, password"):
				l.adminPassword = field(line, "console user admin, password")
			case strings.HasPrefix(trimmed, "sink status:"):
				l.sink = strings.TrimSuffix(field(line, "sink status:"), "/v1/sink/status")
			case strings.HasPrefix(trimmed, "edge scheduler:"):
				l.edgeScheduler = strings.TrimSuffix(field(line, "edge scheduler:"), "/v1/assignments")
			case strings.HasPrefix(trimmed, "cloud scheduler:"):
				l.cloudScheduler = strings.TrimSuffix(field(line, "cloud scheduler:"), "/v1/assignments")
			}
		case <-ctx.Done():
			t.Fatalf("cefiot-local printed no URLs: %v\n%s", ctx.Err(), tail(logs.String(), 60))
		}
	}
	go func() {
		for range lines { // keep reading so it never blocks on stdout
		}
	}()
	t.Logf("local default: console %s, sink %s, schedulers %s %s", l.console, l.sink, l.edgeScheduler, l.cloudScheduler)
	l.runDir = runDir
	l.pki = sitepki.Site{Name: "edge", Dir: filepath.Join(runDir, "pki", "edge")}
	op, err := sitepki.Identity(sitepki.Operator, l.pki, sitepki.Site{Name: "cloud", Dir: filepath.Join(runDir, "pki", "cloud")})
	if err != nil {
		t.Fatal(err)
	}
	l.client = op.HTTPClient()
	return l
}

// lockedBuffer lets the process write while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// checkLoginInBrowser adds a viewer to the console's users file (read at
// each request) and runs web/e2e/login.mjs: a browser without a client
// certificate gets the login page, a wrong password is refused, the viewer
// sees no action control and is refused a direct call, logs out; the
// first-start admin (its password printed once by cefiot-local) sees the
// actions and the users, adds an operator and a viewer of another camera
// in the page; a page of another origin posts a drain and is refused; the
// operator sees no administrator control and is refused the users API;
// the camera-limited viewer sees no other camera and gets 404 for its
// frame; and the audit trail shows all of it.
func checkLoginInBrowser(ctx context.Context, t *testing.T, root, chromium, shots string, local localDefault) {
	t.Helper()
	if local.adminPassword == "" {
		t.Fatal("cefiot-local printed no console password on its first start")
	}
	path := filepath.Join(local.runDir, "console-users.yaml")
	people, err := users.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	const viewer, viewerPassword = "vera", "vera's long password"
	hash, err := users.Hash(viewerPassword)
	if err != nil {
		t.Fatal(err)
	}
	people.Users = append(people.Users, users.User{Name: viewer, Role: "viewer", Hash: hash})
	b, err := yaml.Marshal(people)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", "login.mjs")
	cmd.Dir = filepath.Join(root, "web", "e2e")
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+local.console, "SCREENSHOT_DIR="+shots, "CHROMIUM="+chromium,
		"ADMIN_PASSWORD="+local.adminPassword, "VIEWER_USER="+viewer, "VIEWER_PASSWORD="+viewerPassword)
	out, err := cmd.CombinedOutput()
	t.Logf("login browser run:\n%s", out)
	if err != nil {
		t.Fatalf("login browser test failed: %v", err)
	}
	if !strings.Contains(string(out), `{"step":"ok"}`) {
		t.Fatal("login browser test did not finish")
	}
}
