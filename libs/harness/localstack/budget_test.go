package localstack

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/kafkaconf"
	"github.com/cefiot/cefiot/libs/pipeline"
)

// A disk budget too small for the edge site stops Start before anything
// starts (the binaries, jars and video here are empty files).
func TestStartRefusesAnEdgeDiskBudgetTooSmall(t *testing.T) {
	if _, err := exec.LookPath("java"); err != nil && os.Getenv("JAVA_HOME") == "" {
		t.Skip("no java: Start looks for it before it plans the budget")
	}
	dir := t.TempDir()
	touch := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin, libs, video := filepath.Join(dir, "bin"), filepath.Join(dir, "libs"), filepath.Join(dir, "video.avi")
	for _, b := range append(pipeline.Kinds(), "scheduler") {
		touch(filepath.Join(bin, b))
	}
	touch(filepath.Join(libs, "kafka_2.13-4.1.1.jar"))
	touch(video)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	_, err := Start(ctx, Config{BinDir: bin, RunDir: filepath.Join(dir, "run"), KafkaLibs: libs, Video: video,
		Logger: slog.New(slog.DiscardHandler), EdgeDiskBudget: 100 << 20})
	if !errors.Is(err, kafkaconf.ErrBudgetTooSmall) {
		t.Fatalf("Start with a 100 MiB edge budget: %v, want ErrBudgetTooSmall", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "kafka-edge")); err == nil {
		t.Errorf("the edge Kafka was started before the budget was refused")
	}
	t.Logf("refused in %v: %v", time.Since(begin).Round(time.Millisecond), err)
}
