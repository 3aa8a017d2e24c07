package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/mjpegtest"
	"github.com/cefiot/cefiot/libs/harness/mosquitto"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/pki"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// notifiedEvent is the part of an event record (MQTT or webhook JSON) the
// test checks; the record's format is a contract with home automations.
type notifiedEvent struct {
	Type         string    `json:"type"`
	EventID      string    `json:"event_id"`
	Site         string    `json:"site"`
	Camera       string    `json:"camera"`
	StartTime    time.Time `json:"start_time"`
	BestFrameID  string    `json:"best_frame_id"`
	BestFrameURL string    `json:"best_frame_url"`
	Labels       []string  `json:"labels"`
	received     time.Time
}

func (e notifiedEvent) key() string { return e.EventID + ":" + e.Type }

// eventLog collects events as a receiver got them.
type eventLog struct {
	mu     sync.Mutex
	events []notifiedEvent
	bad    []string
}

func (l *eventLog) add(body []byte) {
	var ev notifiedEvent
	err := json.Unmarshal(body, &ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.bad = append(l.bad, fmt.Sprintf("%v: %q", err, body))
		return
	}
	ev.received = time.Now()
	l.events = append(l.events, ev)
}

// byKey returns the first receipt of each "<event>:<type>" and how many
// receipts repeated one.
func (l *eventLog) byKey() (map[string]notifiedEvent, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]notifiedEvent{}
	repeats := 0
	for _, ev := range l.events {
		if _, ok := out[ev.key()]; ok {
			repeats++
			continue
		}
		out[ev.key()] = ev
	}
	return out, repeats
}

// unique counts the distinct events of type typ received.
func (l *eventLog) unique(typ string) int {
	got, _ := l.byKey()
	n := 0
	for _, ev := range got {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func (l *eventLog) count(typ string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// TestMotionEventsReachMQTTAndWebhooks runs a live camera whose scene moves
// about once a second, on the secure local stack, with enrich's notifier
// sending every motion event to a real Mosquitto (TLS, client
// certificates of the home's own CA, as Home Assistant users run it), to a
// webhook (TLS, signed bodies) and to a second webhook that is down.
// Halfway, enrich is SIGKILLed and started again.
//
// It checks, against the events in what enrich committed (the frames'
// START and END phases): each start and end reached MQTT and the live
// webhook, with a correct signature and a best frame of that event; each
// went to the events dead-letter topic for the dead webhook, which held
// nothing else up; nothing was lost to the kill; and the alert latency, from the capture of an event's
// first motion frame to its "new" record at the MQTT subscriber, has a p99
// of at most 1 s.
func TestMotionEventsReachMQTTAndWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on real Kafka and Mosquitto; skipped with -short")
	}
	if _, err := mosquitto.Bin(); err != nil {
		if os.Getenv("CEFIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	const minEvents = 40
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()

	// The home's MQTT broker, with a CA of its own.
	home := filepath.Join(dir, "home-pki")
	ca, _, err := pki.EnsureCA(home, "home", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"mosquitto", "cefiot", "homeassistant"} {
		if _, err := ca.WriteIssued(home, c, []string{"127.0.0.1"}, time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	bcert, bkey, homeCA := pki.Paths(home, "mosquitto")
	broker, err := mosquitto.Start(ctx, mosquitto.Config{Dir: home, CA: homeCA, Cert: bcert, Key: bkey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Stop)
	mqttLog := &eventLog{}
	states := &eventLog{}
	subscribeEvents(t, broker.CertAddr, home, mqttLog, states)

	// The webhook receiver (TLS; the notifier trusts its certificate) and
	// one that is down.
	secret := "hook-secret"
	hookLog := &eventLog{}
	var badSignatures sync.Map
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if r.Header.Get("X-Cefiot-Signature-256") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			badSignatures.Store(string(body), true)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		hookLog.add(body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	hookCA := filepath.Join(dir, "hook-ca.pem")
	writeFile(t, hookCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}))
	secretFile := filepath.Join(dir, "hook-secret")
	writeFile(t, secretFile, []byte(secret+"\n"))
	deadAddr, err := netx.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}

	// A live camera: a square moves for 10 frames of every 50 (25 fps),
	// and jumps back when the scene loops, so about one event a second.
	// The picture number and caption change in every picture: masked.
	cam, err := mjpegtest.NewLive(videogen.Spec{Width: 320, Height: 240, Frames: 50, FPS: 25, MotionStart: 10, MotionEnd: 19, SquareSize: 60, Speed: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	camStarted := time.Now()
	camerasFile := filepath.Join(dir, "cameras.yaml")
	writeFile(t, camerasFile, []byte(`cameras:
  cam-1:
    source: `+cam.URL()+`
    mask:
      - [[0, 0], [320, 0], [320, 14], [0, 14]]
      - [[0, 216], [320, 216], [320, 240], [0, 240]]
    pre_capture: 2
    post_capture: 5
    min_motion_frames: 1
    cooldown: 0s
`))
	ecert, ekey, _ := pki.Paths(home, "cefiot")
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: cam.URL(),
		Cameras: []string{"cam-1"}, Logger: logger,
		BinaryArgs: map[string][]string{
			"capture": {"-cameras", camerasFile},
			"enrich": {
				"-mqtt-url", "mqtts://" + broker.CertAddr, "-mqtt-ca", homeCA, "-mqtt-cert", ecert, "-mqtt-key", ekey,
				"-webhook-urls", hook.URL + "/hook?token=t0k3n,https://" + deadAddr + "/down",
				"-webhook-ca", hookCA, "-webhook-secret-file", secretFile,
				"-notify-frame-url", "https://cloud.example/v1/frames/{frame_id}/jpeg",
				// Long enough for the events held up by the kill below.
				"-notify-max-age", "20s",
			},
		},
	})
	failOnExit(ctx, t, stack, cancel)

	ended := func(n int) {
		awaitState(ctx, t, fmt.Sprintf("%d events ended at the MQTT subscriber", n), func() (bool, string) {
			got := mqttLog.unique("end")
			return got >= n, fmt.Sprintf("%d ended, %d started", got, mqttLog.unique("new"))
		})
	}
	ended(minEvents)
	// enrich (and its notifier) SIGKILLed while events flow, then started
	// again as a kubelet would: what was in flight is delivered after all.
	stack.KillService("enrich")
	killedAt := time.Now()
	if err := stack.StartService("enrich"); err != nil {
		t.Fatal(err)
	}
	ended(minEvents + 20)
	// No more events: what enrich committed is then the whole truth.
	stack.StopService(ctx, "capture")
	sent := committedEvents(ctx, t, stack.Edge.Conn())
	if len(sent.keys) < 2*minEvents {
		t.Fatalf("enrich committed %d event starts and ends, want at least %d", len(sent.keys), 2*minEvents)
	}
	for name, log := range map[string]*eventLog{"MQTT": mqttLog, "webhook": hookLog} {
		awaitState(ctx, t, "every event at "+name, func() (bool, string) {
			got, _ := log.byKey()
			missing := 0
			for k := range sent.keys {
				if _, ok := got[k]; !ok {
					missing++
				}
			}
			return missing == 0, fmt.Sprintf("%d of %d missing", missing, len(sent.keys))
		})
		got, repeats := log.byKey()
		for k, ev := range got {
			if !sent.keys[k] {
				t.Errorf("%s: %s was never committed by enrich", name, k)
			}
			if ev.Site != "edge" || ev.Camera != "cam-1" || sent.eventOf[ev.BestFrameID] != ev.EventID {
				t.Errorf("%s: %s: site %q camera %q best frame %q (of event %q)", name, k, ev.Site, ev.Camera, ev.BestFrameID, sent.eventOf[ev.BestFrameID])
			}
			if ev.BestFrameURL != "https://cloud.example/v1/frames/"+ev.BestFrameID+"/jpeg" {
				t.Errorf("%s: %s: best frame URL %q", name, k, ev.BestFrameURL)
			}
		}
		t.Logf("%s: %d starts and ends, all that enrich committed; %d delivered twice", name, len(got), repeats)
		// Each target's own position is committed every second: after
		// the kill it is sent again at most what it took since then.
		if repeats > 4 {
			t.Errorf("%s: %d events delivered twice after the kill, want at most 4 (one commit interval)", name, repeats)
		}
		if len(log.bad) > 0 {
			t.Errorf("%s: records that are not events: %v", name, log.bad)
		}
	}
	badSignatures.Range(func(k, _ any) bool {
		t.Errorf("webhook body with a bad signature: %s", k)
		return true
	})
	if n := states.count("ON"); n < minEvents {
		t.Errorf("motion state turned ON %d times, want at least %d", n, minEvents)
	}

	// The webhook that is down: every event in the dead-letter topic (code
	// gave-up, or stale for those read again after the kill when already
	// too old).
	awaitState(ctx, t, "every event dead-lettered for the webhook that is down", func() (bool, string) {
		dead, read := deadLetteredEvents(ctx, t, stack.Edge.Conn(), "webhook https://"+deadAddr+"/down")
		missing := 0
		for k := range sent.keys {
			if !dead[k] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d not dead-lettered (%s)", missing, len(sent.keys), read)
	})

	// Alert latency: first motion frame captured -> "new" at the
	// subscriber. The first events meet a cold site (each stage's first
	// transactions, the brokers' first group coordination, the MQTT
	// discovery record): those of the first 5 s after the first alert are
	// reported on their own; the rest, up to the kill, are the site at
	// work.
	got, _ := mqttLog.byKey()
	type alert struct {
		motion, received time.Time
	}
	var alerts []alert
	for id, first := range sent.firstMotion {
		if ev, ok := got[id+":new"]; ok && first.Before(killedAt) {
			alerts = append(alerts, alert{first, ev.received})
		}
	}
	sort.Slice(alerts, func(i, j int) bool { return alerts[i].motion.Before(alerts[j].motion) })
	if len(alerts) == 0 {
		t.Fatal("no alerts before the kill")
	}
	warm := alerts[0].received.Add(5 * time.Second)
	var lat []time.Duration
	for _, a := range alerts {
		if a.motion.Before(warm) {
			t.Logf("cold-start alert: motion %v after the camera started, alert after %v", a.motion.Sub(camStarted), a.received.Sub(a.motion))
			continue
		}
		lat = append(lat, a.received.Sub(a.motion))
	}
	if len(lat) < minEvents/2 {
		t.Fatalf("%d alerts after the warm-up, want at least %d", len(lat), minEvents/2)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	t.Logf("alert latency over %d events after the warm-up, before the kill (first motion frame captured -> MQTT): p50 %v, p90 %v, p99 %v, max %v", len(lat), p(0.5), p(0.9), p(0.99), lat[len(lat)-1])
	if p(0.99) > time.Second {
		t.Errorf("alert latency p99 %v, want at most 1 s", p(0.99))
	}
}

// subscribeEvents subscribes, as Home Assistant would, to the events and
// the camera's motion state.
func subscribeEvents(t *testing.T, addr, pkiDir string, events, states *eventLog) {
	t.Helper()
	cert, key, caFile := pki.Paths(pkiDir, "homeassistant")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://" + addr).SetClientID("homeassistant").
		SetTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	subs := map[string]mqtt.MessageHandler{
		"cefiot/edge/events": func(_ mqtt.Client, m mqtt.Message) { events.add(m.Payload()) },
		"cefiot/edge/cam-1/motion": func(_ mqtt.Client, m mqtt.Message) {
			states.add([]byte(fmt.Sprintf(`{"type":%q}`, m.Payload())))
		},
	}
	for topic, h := range subs {
		if tok := c.Subscribe(topic, 1, h); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
}

// sentEvents is what enrich committed: the "<event>:<type>" keys of every
// start and end, each event's first motion frame capture time, and each
// frame's event.
type sentEvents struct {
	keys        map[string]bool
	firstMotion map[string]time.Time
	eventOf     map[string]string
}

func committedEvents(ctx context.Context, t *testing.T, conn kafkax.Conn) sentEvents {
	t.Helper()
	s := sentEvents{keys: map[string]bool{}, firstMotion: map[string]time.Time{}, eventOf: map[string]string{}}
	for _, r := range readCommitted(ctx, t, conn, pipeline.TopicFramesEnriched, true) {
		f := r.enriched.GetFrame()
		if f.GetEventId() == "" {
			continue
		}
		s.eventOf[f.GetFrameId()] = f.GetEventId()
		switch {
		case f.GetEventPhase() == cefiotv1.EventPhase_EVENT_PHASE_START:
			s.keys[f.GetEventId()+":new"] = true
		case f.GetEventPhase() == cefiotv1.EventPhase_EVENT_PHASE_END && f.GetEventFrameIndex() == 0:
			s.keys[f.GetEventId()+":new"] = true
		}
		if f.GetEventPhase() == cefiotv1.EventPhase_EVENT_PHASE_END {
			s.keys[f.GetEventId()+":end"] = true
		}
		if _, ok := s.firstMotion[f.GetEventId()]; !ok && f.GetMotion() {
			s.firstMotion[f.GetEventId()] = f.GetCaptureTime().AsTime()
		}
	}
	return s
}

// deadLetteredEvents reads the events dead-letter topic: the
// "<event>:<type>" keys dead-lettered for one of targets, and what was
// read (for a failure message).
func deadLetteredEvents(ctx context.Context, t *testing.T, conn kafkax.Conn, targets ...string) (map[string]bool, string) {
	t.Helper()
	out := map[string]bool{}
	records := readRaw(ctx, t, conn, pipeline.TopicEventsDeadLetter)
	read := fmt.Sprintf("%d records in %s", len(records), pipeline.TopicEventsDeadLetter)
	for _, r := range records {
		reason, _ := kafkax.Header(r, pipeline.HeaderDLQReason)
		read += "; " + reason
		code, _ := kafkax.Header(r, pipeline.HeaderDLQCode)
		stage, _ := kafkax.Header(r, pipeline.HeaderDLQStage)
		if stage != "notify" || code == "" || !slices.ContainsFunc(targets, func(target string) bool { return strings.HasPrefix(reason, target+": ") }) {
			continue
		}
		var ev notifiedEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Errorf("dead letter is not an event: %v", err)
			continue
		}
		out[ev.key()] = true
	}
	return out, read
}

// readRaw reads every record of topic up to its high watermarks.
func readRaw(ctx context.Context, t *testing.T, conn kafkax.Conn, topic string) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(conn.Config(map[string]any{
		"group.id": "cefiot-e2e-raw-reader", "enable.auto.commit": false, "enable.partition.eof": true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*kafka.Message
	for _, p := range md.Topics[topic].Partitions {
		low, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if high <= low {
			continue
		}
		tp := topic
		if err := c.Assign([]kafka.TopicPartition{{Topic: &tp, Partition: p.ID, Offset: kafka.Offset(low)}}); err != nil {
			t.Fatal(err)
		}
		for ctx.Err() == nil {
			ev := c.Poll(200)
			if m, ok := ev.(*kafka.Message); ok {
				out = append(out, m)
				if int64(m.TopicPartition.Offset) >= high-1 {
					break
				}
			} else if _, ok := ev.(kafka.PartitionEOF); ok {
				break
			}
		}
	}
	return out
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
