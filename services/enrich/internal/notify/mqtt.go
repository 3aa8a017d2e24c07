package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MQTT topics, under the prefix (Home Assistant's conventions):
//
//	<prefix>/<site>/available          "online" / "offline" (retained; the last will)
//	<prefix>/<site>/<camera>/motion    "ON" / "OFF" (retained: a binary_sensor's state)
//	<prefix>/<site>/<camera>/objects/<label>   "ON" while an open event has seen the object, "OFF" (retained)
//	<prefix>/<site>/events             the Event as JSON, type new, update or end (QoS 1)
//	<discovery>/binary_sensor/cefiot_<site>_<camera>/motion/config          discovery (retained)
//	<discovery>/binary_sensor/cefiot_<site>_<camera>/object_<label>/config  discovery, per kind of object
func availabilityTopic(prefix, site string) string { return prefix + "/" + site + "/available" }
func objectTopic(prefix, site, camera, label string) string {
	return prefix + "/" + site + "/" + topicLevel(camera) + "/objects/" + objectLevel(label)
}
func objectDiscoveryTopic(discovery, site, camera, label string) string {
	return discovery + "/binary_sensor/" + objectID(site, camera) + "/object_" + objectLevel(label) + "/config"
}

// objectLevel is a label as a topic level and id part: lower case,
// [a-z0-9_-] only ("traffic light" is traffic_light).
func objectLevel(label string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(label) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	return b.String()
}
func motionTopic(prefix, site, camera string) string {
	return prefix + "/" + site + "/" + topicLevel(camera) + "/motion"
}
func eventsTopic(prefix, site string) string { return prefix + "/" + site + "/events" }
func discoveryTopic(discovery, site, camera string) string {
	return discovery + "/binary_sensor/" + objectID(site, camera) + "/motion/config"
}

// topicLevel keeps a name from adding levels or wildcards to a topic.
func topicLevel(s string) string { return strings.NewReplacer("/", "_", "+", "_", "#", "_").Replace(s) }

// objectID is a camera's Home Assistant object id: [a-zA-Z0-9_-] only.
func objectID(site, camera string) string {
	var b strings.Builder
	for _, r := range "cefiot_" + site + "_" + camera {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	return b.String()
}

// MQTTOptions configure the MQTT target.
type MQTTOptions struct {
	Config   Config
	Site     string
	ClientID string
	Logger   *slog.Logger
}

// MQTT publishes events to an MQTT broker over TLS, announcing each camera
// to Home Assistant's discovery the first time it has an event.
type MQTT struct {
	client    mqtt.Client
	prefix    string
	discovery string
	site      string
	name      string
	logger    *slog.Logger

	mu        sync.Mutex
	announced map[string]bool // discovery topics published on this connection
}

var _ Target = (*MQTT)(nil)

// NewMQTT connects to the broker in the background (it keeps retrying and
// reconnecting; Send fails, and is retried, while it is away).
func NewMQTT(o MQTTOptions) (*MQTT, error) {
	c := o.Config
	tlsCfg, err := clientTLS(c.MQTTCA, c.MQTTCert, c.MQTTKey)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	u, err := url.Parse(c.MQTTURL)
	if err != nil {
		return nil, fmt.Errorf("mqtt: -mqtt-url: %w", err)
	}
	tlsCfg.ServerName = u.Hostname()
	m := &MQTT{prefix: c.MQTTTopicPrefix, discovery: c.MQTTDiscoveryPrefix, site: o.Site,
		name: "mqtt " + u.Host, logger: o.Logger.With("target", "mqtt "+u.Host), announced: map[string]bool{}}
	opts := mqtt.NewClientOptions().
		AddBroker("ssl://"+u.Host).
		SetClientID(o.ClientID).
		SetTLSConfig(tlsCfg).
		SetCleanSession(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(10*time.Second).
		SetConnectTimeout(10*time.Second).
		SetKeepAlive(30*time.Second).
		SetOrderMatters(false).
		SetWill(availabilityTopic(m.prefix, m.site), "offline", 1, true).
		SetOnConnectHandler(m.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			m.logger.Warn("MQTT connection lost; reconnecting", "err", err)
		})
	if c.MQTTUsername != "" {
		pw, err := readSecret(c.MQTTPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: -mqtt-password-file: %w", err)
		}
		opts.SetUsername(c.MQTTUsername).SetPassword(pw)
	}
	m.client = mqtt.NewClient(opts)
	m.client.Connect() // retries in the background (SetConnectRetry)
	return m, nil
}

// onConnect announces the site online and forgets which cameras were
// announced (a broker without persistence lost them).
func (m *MQTT) onConnect(c mqtt.Client) {
	m.logger.Info("MQTT connected")
	m.mu.Lock()
	m.announced = map[string]bool{}
	m.mu.Unlock()
	c.Publish(availabilityTopic(m.prefix, m.site), 1, true, "online")
}

// Name names the broker (host and port).
func (m *MQTT) Name() string { return m.name }

// Send publishes ev: the camera's motion state and a state per kind of
// object the event has seen (retained: ON while the event is open, OFF at
// its end), and the event record, each at QoS 1, and waits for the
// broker's acknowledgements.
func (m *MQTT) Send(ctx context.Context, ev Event) error {
	if !m.client.IsConnectionOpen() {
		return errors.New("not connected to the MQTT broker")
	}
	if err := m.announce(ctx, ev.Camera); err != nil {
		return err
	}
	state := "ON"
	if ev.Type == TypeEnd {
		state = "OFF"
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return Permanent(fmt.Errorf("encode event: %w", err))
	}
	for _, label := range ev.Labels {
		if err := m.announceObject(ctx, ev.Camera, label); err != nil {
			return err
		}
	}
	tokens := []mqtt.Token{
		m.client.Publish(eventsTopic(m.prefix, m.site), 1, false, body),
		m.client.Publish(motionTopic(m.prefix, m.site, ev.Camera), 1, true, state),
	}
	for _, label := range ev.Labels {
		tokens = append(tokens, m.client.Publish(objectTopic(m.prefix, m.site, ev.Camera, label), 1, true, state))
	}
	for _, t := range tokens {
		if err := wait(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// announce publishes the camera's motion sensor's discovery record once
// per connection.
func (m *MQTT) announce(ctx context.Context, camera string) error {
	id := objectID(m.site, camera)
	return m.announceSensor(ctx, camera, discoveryTopic(m.discovery, m.site, camera), map[string]any{
		"name":         "Motion",
		"unique_id":    id + "_motion",
		"object_id":    id + "_motion",
		"device_class": "motion",
		"state_topic":  motionTopic(m.prefix, m.site, camera),
	})
}

// announceObject publishes the discovery record of the camera's sensor for
// one kind of object (an occupancy sensor: "person" on while an event has
// a person in it) once per connection.
func (m *MQTT) announceObject(ctx context.Context, camera, label string) error {
	id, level := objectID(m.site, camera), objectLevel(label)
	name := label
	if name != "" {
		name = strings.ToUpper(name[:1]) + name[1:]
	}
	return m.announceSensor(ctx, camera, objectDiscoveryTopic(m.discovery, m.site, camera, label), map[string]any{
		"name":         name,
		"unique_id":    id + "_object_" + level,
		"object_id":    id + "_" + level,
		"device_class": "occupancy",
		"state_topic":  objectTopic(m.prefix, m.site, camera, label),
	})
}

// announceSensor publishes a binary sensor's discovery record (cfg with
// the fields every sensor shares added), once per connection.
func (m *MQTT) announceSensor(ctx context.Context, camera, topic string, cfg map[string]any) error {
	if m.discovery == "" {
		return nil
	}
	m.mu.Lock()
	done := m.announced[topic]
	m.mu.Unlock()
	if done {
		return nil
	}
	id := objectID(m.site, camera)
	cfg["payload_on"], cfg["payload_off"] = "ON", "OFF"
	cfg["availability_topic"] = availabilityTopic(m.prefix, m.site)
	cfg["payload_available"], cfg["payload_not_available"] = "online", "offline"
	cfg["device"] = map[string]any{
		"identifiers":  []string{id},
		"name":         camera + " (" + m.site + ")",
		"manufacturer": "cefiot",
		"model":        "camera",
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return Permanent(fmt.Errorf("encode discovery: %w", err))
	}
	if err := wait(ctx, m.client.Publish(topic, 1, true, body)); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	m.mu.Lock()
	m.announced[topic] = true
	m.mu.Unlock()
	return nil
}

// Close says the site is offline and disconnects.
func (m *MQTT) Close() {
	if m.client.IsConnectionOpen() {
		t := m.client.Publish(availabilityTopic(m.prefix, m.site), 1, true, "offline")
		t.WaitTimeout(2 * time.Second)
	}
	m.client.Disconnect(500)
}

// wait waits for an MQTT token until ctx ends.
func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish: no acknowledgement: %w", ctx.Err())
	}
}
