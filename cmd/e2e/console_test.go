package e2e

import (
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
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/console"
	"github.com/cefiot/cefiot/libs/kafkalocal"
	"github.com/cefiot/cefiot/libs/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/localstack"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/videogen"
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

// TestConsoleInBrowser runs the local stack (two edge nodes), serves the
// console for it and drives the page in headless Chromium: it loads without
// console errors, shows all five stages placed and healthy, shows an event
// of the sample video and opens it with its frames and boxes, receives new
// snapshots from the event stream without polling, filters events by time
// and camera, moves enrich to the cloud site and back, drains the node that
// runs enrich and shows enrich on the other node, and shows the API's error
// when an action is refused. Screenshots go to
// web/e2e/screenshots (CEFIOT_UPDATE_DOCS=1 also copies the overview to
// docs/console.png).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on the real stack; skipped with -short")
	}
	root, chromium := browserTool(t)
	dir := t.TempDir()
	spec := videogen.DefaultSpec()
	video := filepath.Join(dir, "sample.avi")
	if err := videogen.Write(video, spec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Logger: logger,
		Nodes: []localstack.NodeSpec{{Name: "node-1", Labels: "zone=a"}, {Name: "node-2", Labels: "zone=b"}},
		// A cloud enrich worker, so the page can move enrich there.
		CloudEnrich: true,
	})
	failOnExit(ctx, t, stack, cancel)
	if _, err := localstack.WaitSink(ctx, stack.SinkHTTP(), func(s localstack.SinkStatus) bool {
		return s.Stored >= int64(spec.MotionFrames())
	}, nil); err != nil {
		t.Fatal(err)
	}

	var targets []console.Target
	for name, url := range stack.AdminURLs() {
		targets = append(targets, console.Target{Name: name, URL: url})
	}
	srv, err := console.Start("127.0.0.1:0", targets, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())

	shots := filepath.Join(root, "web", "e2e", "screenshots")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "node", "console.mjs")
	cmd.Dir = filepath.Join(root, "web", "e2e")
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+srv.URL(), "SCREENSHOT_DIR="+shots, "CHROMIUM="+chromium)
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
	node := enrichNode(ctx, t, stack.HTTP("scheduler-edge"))
	if node != to || node == from {
		t.Errorf("page shows enrich on %q (drained %q), the scheduler has it on %q", to, from, node)
	}
	// Both site moves ran to the end: the cloud's copy is gone again.
	if steps["site-move"] == nil {
		t.Error("the page moved no workload between sites")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, stack.HTTP("scheduler-cloud")+"/v1/workloads/enrich.edge", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
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

func enrichNode(ctx context.Context, t *testing.T, scheduler string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, scheduler+"/v1/assignments", nil)
	resp, err := http.DefaultClient.Do(req)
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
