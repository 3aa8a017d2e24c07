package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cefiot/cefiot/libs/harness/mosquitto"
	"github.com/cefiot/cefiot/libs/pki"
)

// mqttFixture is a real Mosquitto over TLS with certificates from a CA of
// the test's own, and a subscriber that records every message.
type mqttFixture struct {
	broker *mosquitto.Broker
	dir    string
	msgs   chan mqtt.Message
}

func startMosquitto(t *testing.T) *mqttFixture {
	t.Helper()
	if _, err := mosquitto.Bin(); err != nil {
		if os.Getenv("CEFIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	ca, _, err := pki.EnsureCA(dir, "edge", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"mosquitto", "notify", "homeassistant"} {
		if _, err := ca.WriteIssued(dir, c, []string{"127.0.0.1", "localhost"}, time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cert, key, caFile := pki.Paths(dir, "mosquitto")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := mosquitto.Start(ctx, mosquitto.Config{Dir: dir, CA: caFile, Cert: cert, Key: key, Users: map[string]string{"cefiot": "pa55word"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", b.Log())
		}
		b.Stop()
	})
	f := &mqttFixture{broker: b, dir: dir, msgs: make(chan mqtt.Message, 100)}
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://" + b.CertAddr).SetClientID("subscriber").SetTLSConfig(f.tls(t, "homeassistant")))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { sub.Disconnect(100) })
	if tok := sub.Subscribe("#", 1, func(_ mqtt.Client, m mqtt.Message) { f.msgs <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return f
}

func (f *mqttFixture) tls(t *testing.T, component string) *tls.Config {
	t.Helper()
	cert, key, caFile := pki.Paths(f.dir, component)
	c, err := clientTLS(caFile, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// next returns the next message on topic, skipping others.
func (f *mqttFixture) next(t *testing.T, topic string) mqtt.Message {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-f.msgs:
			if m.Topic() == topic {
				return m
			}
		case <-deadline:
			t.Fatalf("no message on %s within 15 s", topic)
		}
	}
}

func (f *mqttFixture) target(t *testing.T, cfg Config) *MQTT {
	t.Helper()
	cfg.MQTTTopicPrefix, cfg.MQTTDiscoveryPrefix = "cefiot", "homeassistant"
	m, err := NewMQTT(MQTTOptions{Config: cfg, Site: "edge", ClientID: "notify-" + t.Name(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// sendSoon sends ev, retrying while the client is still connecting.
func sendSoon(t *testing.T, m *MQTT, ev Event) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := m.Send(ctx, ev)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("send: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // retry as the deliverer does
	}
}

func TestMQTTPublishesEventsTheHomeAssistantWay(t *testing.T) {
	f := startMosquitto(t)
	cert, key, caFile := pki.Paths(f.dir, "notify")
	m := f.target(t, Config{MQTTURL: "mqtts://" + f.broker.CertAddr, MQTTCA: caFile, MQTTCert: cert, MQTTKey: key})
	if got := string(f.next(t, "cefiot/edge/available").Payload()); got != "online" {
		t.Fatalf("availability %q, want online", got)
	}
	start := time.Now().UTC()
	ev := Event{Type: TypeNew, EventID: "front/door_1_e00000001", Site: "edge", Camera: "front/door", StartTime: start, Labels: []string{}, BestFrameID: "f1"}
	sendSoon(t, m, ev)
	disc := f.next(t, "homeassistant/binary_sensor/cefiot_edge_front_door/motion/config")
	var cfg map[string]any
	if err := json.Unmarshal(disc.Payload(), &cfg); err != nil {
		t.Fatalf("discovery %s: %v", disc.Payload(), err)
	}
	if cfg["device_class"] != "motion" || cfg["state_topic"] != "cefiot/edge/front_door/motion" || cfg["availability_topic"] != "cefiot/edge/available" || cfg["unique_id"] != "cefiot_edge_front_door_motion" {
		t.Fatalf("discovery %v", cfg)
	}
	var got Event
	if err := json.Unmarshal(f.next(t, "cefiot/edge/events").Payload(), &got); err != nil || got.Type != TypeNew || got.EventID != ev.EventID || !got.StartTime.Equal(start) {
		t.Fatalf("event %+v: %v", got, err)
	}
	if s := string(f.next(t, "cefiot/edge/front_door/motion").Payload()); s != "ON" {
		t.Fatalf("state %q, want ON", s)
	}
	// A person, then a traffic light, seen in the event: a sensor each,
	// announced and ON.
	ev.Type, ev.Labels = TypeUpdate, []string{"person", "traffic light"}
	sendSoon(t, m, ev)
	levels := []string{"person", "traffic_light"} // in the order published
	for _, level := range levels {
		disc := f.next(t, "homeassistant/binary_sensor/cefiot_edge_front_door/object_"+level+"/config")
		var cfg map[string]any
		if err := json.Unmarshal(disc.Payload(), &cfg); err != nil {
			t.Fatalf("discovery %s: %v", disc.Payload(), err)
		}
		if cfg["device_class"] != "occupancy" || cfg["state_topic"] != "cefiot/edge/front_door/objects/"+level || cfg["unique_id"] != "cefiot_edge_front_door_object_"+level {
			t.Fatalf("%s: discovery %v", level, cfg)
		}
	}
	for _, level := range levels {
		if s := string(f.next(t, "cefiot/edge/front_door/objects/"+level).Payload()); s != "ON" {
			t.Fatalf("%s: state %q, want ON", level, s)
		}
	}
	ev.Type = TypeEnd
	sendSoon(t, m, ev)
	if s := string(f.next(t, "cefiot/edge/front_door/motion").Payload()); s != "OFF" {
		t.Fatalf("state %q, want OFF", s)
	}
	if s := string(f.next(t, "cefiot/edge/front_door/objects/person").Payload()); s != "OFF" {
		t.Fatalf("person: state %q at the event's end, want OFF", s)
	}
	// Home Assistant starting later finds the camera and its state: both
	// are retained.
	late := make(chan mqtt.Message, 10)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://" + f.broker.CertAddr).SetClientID("late").SetTLSConfig(f.tls(t, "homeassistant")))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("late subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	for _, topic := range []string{"homeassistant/binary_sensor/cefiot_edge_front_door/motion/config", "cefiot/edge/front_door/motion"} {
		if tok := sub.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { late <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		select {
		case m := <-late:
			if !m.Retained() || (topic == "cefiot/edge/front_door/motion" && string(m.Payload()) != "OFF") {
				t.Fatalf("%s: retained %v, payload %q", topic, m.Retained(), m.Payload())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing retained", topic)
		}
	}
}

func TestMQTTWithUserAndPassword(t *testing.T) {
	f := startMosquitto(t)
	_, _, caFile := pki.Paths(f.dir, "notify")
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("pa55word\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := f.target(t, Config{MQTTURL: "mqtts://" + f.broker.PasswordAddr, MQTTCA: caFile, MQTTUsername: "cefiot", MQTTPasswordFile: pw})
	sendSoon(t, m, Event{Type: TypeNew, EventID: "e1", Site: "edge", Camera: "yard", StartTime: time.Now()})
	if s := string(f.next(t, "cefiot/edge/yard/motion").Payload()); s != "ON" {
		t.Fatalf("state %q", s)
	}
}

// TestMQTTRefusals: a notifier with a certificate of another CA is refused
// by the broker, and one that does not trust the broker's CA refuses it;
// neither delivers anything.
func TestMQTTRefusals(t *testing.T) {
	f := startMosquitto(t)
	foreignDir := t.TempDir()
	foreign, _, err := pki.EnsureCA(foreignDir, "elsewhere", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := foreign.WriteIssued(foreignDir, "notify", []string{"127.0.0.1"}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, siteCA := pki.Paths(f.dir, "notify")
	fcert, fkey, fCA := pki.Paths(foreignDir, "notify")
	scert, skey, _ := pki.Paths(f.dir, "notify")
	for name, cfg := range map[string]Config{
		"client certificate of a foreign CA":      {MQTTURL: "mqtts://" + f.broker.CertAddr, MQTTCA: siteCA, MQTTCert: fcert, MQTTKey: fkey},
		"broker certificate outside the roots":    {MQTTURL: "mqtts://" + f.broker.CertAddr, MQTTCA: fCA, MQTTCert: scert, MQTTKey: skey},
		"no client certificate, no password":      {MQTTURL: "mqtts://" + f.broker.CertAddr, MQTTCA: siteCA},
		"wrong password on the password listener": {MQTTURL: "mqtts://" + f.broker.PasswordAddr, MQTTCA: siteCA, MQTTUsername: "cefiot", MQTTPasswordFile: writeFile(t, "guess")},
	} {
		t.Run(name, func(t *testing.T) {
			m := f.target(t, cfg)
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := m.Send(ctx, Event{Type: TypeNew, EventID: "stranger", Site: "edge", Camera: "x"})
				cancel()
				if err == nil {
					t.Fatal("delivered")
				}
				time.Sleep(200 * time.Millisecond) // the client keeps reconnecting in the background
			}
		})
	}
	select {
	case msg := <-f.msgs:
		if strings.Contains(string(msg.Payload()), "stranger") || msg.Topic() == "cefiot/edge/x/motion" {
			t.Fatalf("the broker took %s from a refused client", msg.Topic())
		}
	default:
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
