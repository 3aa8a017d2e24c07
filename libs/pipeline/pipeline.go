// Package pipeline is the one home of the pipeline's facts: the workload
// kinds, the topics inside a site, the names a site's topics and the
// bridge's own records get in the cloud, the record headers and which stage
// owns each, and the workload params of a cross-site handoff.
//
// Services take their flag defaults from here, and placement, sitemove, the
// sink, the console and the local stack their names; nothing else spells
// them out.
package pipeline

import (
	"regexp"
	"strings"
)

// Workload kinds: each is run by the service of the same name.
const (
	KindCapture = "capture"
	KindEnrich  = "enrich"
	KindBridge  = "bridge"
	KindSink    = "sink"
)

// Kinds returns every workload kind, in pipeline order.
func Kinds() []string { return []string{KindCapture, KindEnrich, KindBridge, KindSink} }

// captureWorkloadPrefix starts the name of a camera's capture workload.
const captureWorkloadPrefix = KindCapture + ":"

// CaptureWorkload is the name of camera's capture workload: capture:<camera>.
func CaptureWorkload(camera string) string { return captureWorkloadPrefix + camera }

// CameraOfWorkload is the camera a capture workload's name names.
func CameraOfWorkload(workload string) (camera string, ok bool) {
	return strings.CutPrefix(workload, captureWorkloadPrefix)
}

// Topics inside a site's Kafka cluster.
const (
	// TopicFramesRaw holds capture's motion frames (PC-1 -> PC-2).
	TopicFramesRaw = "frames.raw"
	// TopicFramesEnriched holds enrich's frames, the ones the bridge
	// forwards to the cloud by default.
	TopicFramesEnriched = "frames.enriched"
	// TopicFramesDeadLetter holds the records enrich refused.
	TopicFramesDeadLetter = "frames.deadletter"
	// TopicEventsDeadLetter holds the motion events enrich's notifier could
	// not deliver to an MQTT broker or a webhook, with the reason.
	TopicEventsDeadLetter = "events.deadletter"
	// TopicCameraStatus holds capture's camera online/offline changes.
	TopicCameraStatus = "cameras.status"
	// TopicSinkDeadLetter (in the cloud cluster) holds the records the
	// sink refused.
	TopicSinkDeadLetter = "sink.deadletter"
	// TopicAudit holds the site's audit trail: one JSON record per
	// state-changing call to any of its admin APIs, refused ones too
	// (libs/audit).
	TopicAudit = "audit"
)

// DefaultPartitions is the partition count capture and enrich create their
// topics with unless their -partitions says otherwise.
const DefaultPartitions = 3

// AuditReaderGroup is the consumer group the scheduler reads the audit
// topic with (it commits nothing: librdkafka wants a group all the same).
const AuditReaderGroup = "cefiot-audit-reader"

// DefaultBridgeTopics returns the edge topics a bridge forwards unless its
// workload says otherwise.
func DefaultBridgeTopics() []string { return []string{TopicFramesEnriched} }

// SharedEdgePrefix is where site's topics live in an edge Kafka cluster
// that several sites share: the prefix its bridge forwards from
// (-edge-topic-prefix) and its bridge's read grants (kafkaacl.SharedEdgeBridge).
func SharedEdgePrefix(site string) string { return site + "." }

// cloudPrefix starts every cloud topic that holds a site's records.
const cloudPrefix = "edge-"

// CloudTopic is the name an edge topic of site gets in the cloud cluster.
func CloudTopic(site, topic string) string { return cloudPrefix + site + "." + topic }

// CheckpointTopic is the compacted cloud topic holding the bridge's source
// positions for site.
func CheckpointTopic(site string) string { return CloudTopic(site, "_cefiot.checkpoints") }

// GapTopic is the cloud topic holding the bridge's gap markers for site.
func GapTopic(site string) string { return CloudTopic(site, "_cefiot.gaps") }

// siteStatusTopic is the cloud name (after the site's prefix) of the
// topic of a site's status reports.
const siteStatusTopic = "_cefiot.site"

// SiteStatusTopic is the cloud topic holding site's status reports
// (cefiot.v1.SiteStatus, key = the site), written by its bridge.
func SiteStatusTopic(site string) string { return CloudTopic(site, siteStatusTopic) }

// SiteStatusPattern is the Kafka regex subscription matching every site's
// status topic.
func SiteStatusPattern() string { return CloudTopicPattern(siteStatusTopic) }

// CloudTopicPattern is the Kafka regex subscription matching topic as
// forwarded from every site (the sink's default: every site's
// frames.enriched).
func CloudTopicPattern(topic string) string {
	return "^" + regexp.QuoteMeta(cloudPrefix) + `.+\.` + regexp.QuoteMeta(topic) + "$"
}

// Thumbnails: capture makes them from the decoded frame; enrich makes one
// only for a frame that came without (or with another width).
const (
	DefaultThumbnailWidth   = 160
	DefaultThumbnailQuality = 70
)

// MaxRecordBytes is the largest record of the pipeline (a camera frame with
// its thumbnail): the brokers' message.max.bytes and replica.fetch.max.bytes
// (libs/kafkaconf), the producers' message.max.bytes and the consumers'
// max.partition.fetch.bytes.
const MaxRecordBytes = 16 << 20

// Record headers, each set by one owner only.
const (
	// HeaderFrameID (set by capture) is the frame's id, the key the sink
	// stores it under.
	HeaderFrameID = "cefiot-frame-id"
	// HeaderEventID (set by capture) is the motion event the frame belongs to.
	HeaderEventID = "cefiot-event-id"
	// HeaderSite (set by enrich) is the site the frame was captured in.
	HeaderSite = "cefiot-site"
	// HeaderRecordType (set by the bridge) marks its gap markers.
	HeaderRecordType = "cefiot-record-type"
	// HeaderHandoff and HeaderHandoffTo (set by enrich) mark a handoff
	// marker record and the site that takes over after it.
	HeaderHandoff   = "cefiot-handoff"
	HeaderHandoffTo = "cefiot-handoff-to"
)

// Headers of a dead-letter record (set by the stage that refused it). The
// record keeps the original key, value, timestamp and headers.
const (
	HeaderDLQReason    = "cefiot-dlq-reason"    // why the record was refused, for people
	HeaderDLQCode      = "cefiot-dlq-code"      // the reason as a short code (decode, too-large, ...)
	HeaderDLQStage     = "cefiot-dlq-stage"     // the service that refused it
	HeaderDLQTopic     = "cefiot-dlq-topic"     // where it was read
	HeaderDLQPartition = "cefiot-dlq-partition" // its partition there
	HeaderDLQOffset    = "cefiot-dlq-offset"    // its offset there
	HeaderDLQTime      = "cefiot-dlq-time"      // RFC 3339 time of the refusal
)

// Workload params.
const (
	// ParamCamera and ParamSource name a capture workload's camera and
	// its video source.
	ParamCamera = "camera"
	ParamSource = "source"
	// ParamRealtime ("true") paces a capture's file source at its frame
	// rate (the local stack's sample video).
	ParamRealtime = "realtime"
	// ParamHandoffTo on a workload names the site it is handing off to.
	ParamHandoffTo = "handoff-to"
	// ParamHandoffFrom on a workload names the site it takes over from.
	ParamHandoffFrom = "handoff-from"
	// ParamHandoffID names the handoff (the marker both sides look for).
	ParamHandoffID = "handoff-id"
	// ParamHandoffAfter names an earlier handoff whose marker a workload
	// must still pass (skipping what comes before it) if it has not yet.
	ParamHandoffAfter = "handoff-after"
	// ParamInputTopic is the topic an enrich workload consumes.
	ParamInputTopic = "input-topic"
	// ParamOutputTopic is the topic an enrich workload produces.
	ParamOutputTopic = "output-topic"
	// ParamOriginSite is the site whose frames a moved enrich processes.
	ParamOriginSite = "origin-site"
	// ParamTopics is the bridge's comma-separated list of edge topics.
	ParamTopics = "topics"
)

// RemoteWorkloadName is the name of the copy of workload name (declared in
// site home) that runs in another site after a move.
func RemoteWorkloadName(name, home string) string { return name + "." + home }

// Kafka names of a site's stages: consumer groups and transactional ids.
// Each starts with "<stage prefix>.<site>.", and a site name has no '.',
// so one site's names never match another's prefix: the Kafka ACLs of a
// site (libs/kafkaacl) grant by these prefixes.

// EnrichPrefix starts the group and transactional ids of site's enrich.
func EnrichPrefix(site string) string { return "cefiot-enrich." + site + "." }

// EnrichGroup is the consumer group of site's enrich.
func EnrichGroup(site string) string { return EnrichPrefix(site) + "group" }

// NotifyGroup is the consumer group of site's event notifier (run by
// enrich): it reads frames.enriched and commits once each event it found
// there is delivered or dead-lettered.
func NotifyGroup(site string) string { return EnrichPrefix(site) + "notify" }

// EnrichTransactionalID is the transactional id of site's enrich
// workload: a replaced enrich fences the old one.
func EnrichTransactionalID(site, workload string) string { return EnrichPrefix(site) + workload }

// BridgePrefix starts the groups and transactional ids of site's bridge.
func BridgePrefix(site string) string { return "cefiot-bridge." + site + "." }

// BridgeTransactionalID is the cloud transactional id of site's bridge
// workload (also its edge consumer group): a replaced bridge fences the
// old one.
func BridgeTransactionalID(site, workload string) string { return BridgePrefix(site) + workload }

// BridgeCheckpointGroup is the group id of site's bridge when it reads its
// checkpoints back (it assigns partitions and commits nothing).
func BridgeCheckpointGroup(site string) string { return BridgePrefix(site) + "_checkpoint-reader" }

// SinkGroup is the consumer group of the sinks of (cloud) site.
func SinkGroup(site string) string { return "cefiot-sink." + site }

// CloudTopicPrefix starts every cloud topic that holds site's records.
func CloudTopicPrefix(site string) string { return CloudTopic(site, "") }

// CloudPrefix starts every cloud topic of every site (the sink reads them).
const CloudPrefix = cloudPrefix
