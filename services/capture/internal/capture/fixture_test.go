package capture

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/libs/tlsx"
	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// cameraTestCapturer is a capturer of the cameras camerasYAML declares,
// publishing to the test cluster at bootstrap with decoding as deployed
// (-hwaccel any) and its metrics in reg. The cluster is plaintext: these
// tests are about cameras; the end-to-end tests run capture over mutual
// TLS.
func cameraTestCapturer(t *testing.T, bootstrap, camerasYAML string, logger *slog.Logger, reg prometheus.Registerer) *capturer {
	t.Helper()
	cameras := filepath.Join(t.TempDir(), "cameras.yaml")
	if err := os.WriteFile(cameras, []byte(camerasYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	registry, err := NewRegistry(cameras, logger)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Common: service.Common{Node: "n1", Site: "edge", TLS: tlsx.Flags{InsecurePlaintext: true}}, KafkaBootstrap: bootstrap,
		Topic: "frames.raw", StatusTopic: "cameras.status", Partitions: 1, JPEGQuality: 80, CamerasFile: cameras,
		SpoolDir: t.TempDir(), SpoolMaxBytes: minSpoolBytes, SpoolAfter: 5 * time.Second, HWAccel: "any", accel: videoio.AccelAny}
	return &capturer{cfg: cfg, logger: logger, metrics: newMetrics(reg), registry: registry}
}

// testConsumer reads topics of the test cluster at bootstrap from their
// start; it is closed when the test ends.
func testConsumer(t *testing.T, bootstrap string, topics ...string) *kafka.Consumer {
	t.Helper()
	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "t", "auto.offset.reset": "earliest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = consumer.Close() })
	if err := consumer.SubscribeTopics(topics, nil); err != nil {
		t.Fatal(err)
	}
	return consumer
}
