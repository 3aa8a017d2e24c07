package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// TestStolenBoardIsLockedOutAndItsSiteGoesOn steals the board running the
// bridge of a two-board site while frames flow: the board vanishes from the
// site (every process SIGKILLed) and the operator revokes its cloud
// credential. The bridge moves to the other board, which keeps forwarding
// with its own credential, and the store ends with every motion frame
// exactly once. The thief, holding the stolen board's key pair, can
// neither write the site's cloud topics nor take its transactional id.
func TestStolenBoardIsLockedOutAndItsSiteGoesOn(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	video, spec := faultVideo(t, dir, 500)
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Nodes: []localstack.NodeSpec{{Name: "board-1"}, {Name: "board-2"}}, Logger: logger,
	})
	watchExits(ctx, t, stack)
	edge := schedulerClient(t, stack, "scheduler-edge")
	awaitState(ctx, t, "every workload running", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		return err == nil && len(as) == 3 && len(cs) == 3, describeRunning(as, cs)
	})
	awaitStored(ctx, t, stack, 20)
	_, cs, err := runningClaims(ctx, edge)
	if err != nil {
		t.Fatal(err)
	}
	stolen := cs[pipeline.KindBridge].GetNode()
	survivor := map[string]string{"board-1": "board-2", "board-2": "board-1"}[stolen]

	stack.KillNode(stolen)
	revoked := time.Now()
	if err := stack.RevokeBoard(ctx, stolen); err != nil {
		t.Fatal(err)
	}
	t.Logf("board %s (running the bridge) stolen and revoked", stolen)
	awaitState(ctx, t, "the bridge running on "+survivor, func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		return err == nil && cs[pipeline.KindBridge].GetNode() == survivor, describeRunning(as, cs)
	})
	before := awaitStored(ctx, t, stack, 0)
	awaitStored(ctx, t, stack, before+20) // forwarded with the survivor's credential, after the revocation
	t.Logf("frames stored again %.1fs after the theft", time.Since(revoked).Seconds())

	want := spec.MotionFrames()
	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= int64(want) }, nil); err != nil {
		t.Fatal(err)
	}
	checkStoreExactlyOnce(ctx, t, stack, want)
	checkPipelineExactlyOnce(ctx, t, stack.Edge.Conn(), stack.Cloud.Conn(), "edge")

	// The thief connects to the cloud with the stolen board's files.
	board := stack.PKI("edge").Files(access.Node(stolen))
	thief := kafkax.Conn{Bootstrap: stack.Cloud.BootstrapServers(), TLS: &tlsx.Files{Cert: board.Cert, Key: board.Key, CA: stack.Cloud.Conn().TLS.CA}}
	for _, topic := range []string{pipeline.CloudTopic("edge", pipeline.TopicFramesEnriched), pipeline.CheckpointTopic("edge")} {
		if err := produceOne(ctx, thief, topic); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
			t.Errorf("the stolen board writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", topic, err)
		}
	}
	if err := initTransactions(ctx, thief, pipeline.BridgeTransactionalID("edge", pipeline.KindBridge)); !isCode(err, kafka.ErrTransactionalIDAuthorizationFailed) {
		t.Errorf("the stolen board fencing the site's bridge: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
}
