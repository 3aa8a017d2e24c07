package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Target is one receiver of events (an MQTT broker, a webhook).
type Target interface {
	// Name names the target in logs, metrics and dead letters, without
	// credentials.
	Name() string
	// Send delivers one event. An error wrapped by Permanent is not
	// retried (the receiver refused the event itself).
	Send(ctx context.Context, ev Event) error
}

// PermanentError is a refusal that retrying cannot change.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return &PermanentError{Err: err} }

// Dead-letter reason codes.
const (
	CodeQueueFull = "queue-full" // the target's queue was full: it is too slow or down
	CodeGaveUp    = "gave-up"    // retried for the whole -notify-max-age
	CodeRefused   = "refused"    // the receiver refused the event itself
	CodeStale     = "stale"      // read again (after a restart) when already older than -notify-max-age
)

// DeadLetterFunc records an event that a target could not take.
type DeadLetterFunc func(ctx context.Context, ev Event, target, code, reason string) error

// Policy bounds a target's delivery.
type Policy struct {
	// Queue is how many events wait for the target at most; an event that
	// finds it full is dead-lettered at once, so a receiver that is down
	// never holds up the others or the pipeline.
	Queue int
	// MaxAge is how long an event is retried before it is dead-lettered.
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt.
	AttemptTimeout time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.Queue <= 0 {
		p.Queue = 1000
	}
	if p.MaxAge <= 0 {
		p.MaxAge = 2 * time.Minute
	}
	if p.MinBackoff <= 0 {
		p.MinBackoff = 250 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 10 * time.Second
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = 10 * time.Second
	}
	return p
}

// job is one event for one target; done is called once it is delivered or
// dead-lettered.
type job struct {
	ev       Event
	enqueued time.Time
	done     func()
}

// deliverer feeds one target from its queue, one event at a time, in order.
type deliverer struct {
	target     Target
	policy     Policy
	queue      chan job
	deadLetter DeadLetterFunc
	logger     *slog.Logger
	metrics    *Metrics
}

func newDeliverer(t Target, p Policy, dl DeadLetterFunc, logger *slog.Logger, m *Metrics) *deliverer {
	p = p.withDefaults()
	return &deliverer{target: t, policy: p, queue: make(chan job, p.Queue), deadLetter: dl, logger: logger.With("target", t.Name()), metrics: m}
}

// offer queues ev, or dead-letters it at once when the queue is full.
func (d *deliverer) offer(ctx context.Context, j job) {
	select {
	case d.queue <- j:
		d.metrics.queued.WithLabelValues(d.target.Name()).Set(float64(len(d.queue)))
	default:
		d.dead(ctx, j, CodeQueueFull, fmt.Sprintf("%d events already wait for this target", cap(d.queue)))
	}
}

// run delivers until ctx ends; what is still queued then is left to the
// next run (its offsets were not committed).
func (d *deliverer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-d.queue:
			d.metrics.queued.WithLabelValues(d.target.Name()).Set(float64(len(d.queue)))
			d.deliver(ctx, j)
		}
	}
}

func (d *deliverer) deliver(ctx context.Context, j job) {
	backoff := d.policy.MinBackoff
	deadline := j.enqueued.Add(d.policy.MaxAge)
	for attempt := 1; ; attempt++ {
		if attempt == 1 && time.Now().After(deadline) {
			// It waited out its whole age behind earlier events (the
			// target is down or slow): no attempt could make it news.
			d.dead(ctx, j, CodeGaveUp, fmt.Sprintf("waited %s behind earlier events for this target", d.policy.MaxAge))
			return
		}
		// An attempt ends by the event's deadline (at least a second):
		// a receiver that swallows connections costs its own events
		// their age, not every later event a full timeout.
		timeout := min(d.policy.AttemptTimeout, max(time.Until(deadline), time.Second))
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := d.target.Send(actx, j.ev)
		cancel()
		if ctx.Err() != nil {
			return // stopping: not done, so not committed
		}
		if err == nil {
			d.metrics.delivered.WithLabelValues(d.target.Name(), j.ev.Type).Inc()
			d.metrics.latency.WithLabelValues(d.target.Name()).Observe(time.Since(j.ev.StartTime).Seconds())
			j.done()
			return
		}
		var perm *PermanentError
		if errors.As(err, &perm) {
			d.dead(ctx, j, CodeRefused, err.Error())
			return
		}
		d.metrics.retries.WithLabelValues(d.target.Name()).Inc()
		if time.Now().Add(backoff).After(deadline) {
			d.dead(ctx, j, CodeGaveUp, fmt.Sprintf("%d attempts in %s, the last: %v", attempt, d.policy.MaxAge, err))
			return
		}
		d.logger.Warn("event not delivered; retrying", "event", j.ev.EventID, "type", j.ev.Type, "attempt", attempt, "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, d.policy.MaxBackoff)
	}
}

// dead records j as undeliverable; it counts as done only once the dead
// letter is written (else the event is read again after a restart).
func (d *deliverer) dead(ctx context.Context, j job, code, reason string) {
	d.logger.Error("event not delivered; sent to the dead-letter topic", "event", j.ev.EventID, "type", j.ev.Type, "code", code, "reason", reason)
	if err := d.deadLetter(ctx, j.ev, d.target.Name(), code, reason); err != nil {
		d.logger.Error("dead letter not written; the event is read again after a restart", "event", j.ev.EventID, "err", err)
		return
	}
	d.metrics.deadLetters.WithLabelValues(d.target.Name(), code).Inc()
	j.done()
}

// Metrics are the notifier's Prometheus metrics.
type Metrics struct {
	delivered   *prometheus.CounterVec
	retries     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	queued      *prometheus.GaugeVec
	latency     *prometheus.HistogramVec
	stale       prometheus.Counter
}

// NewMetrics registers the notifier's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cefiot_notify_delivered_total", Help: "Events delivered, by target and type (new, end)."}, []string{"target", "type"}),
		retries:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cefiot_notify_retries_total", Help: "Failed delivery attempts that were retried, by target."}, []string{"target"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_notify_dead_letters_total", Help: "Events written to the events dead-letter topic, by target and reason code.",
		}, []string{"target", "code"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cefiot_notify_queued", Help: "Events waiting for a target."}, []string{"target"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cefiot_notify_latency_seconds", Help: "From an event's first frame captured to its record delivered, by target.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"target"}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_notify_stale_total", Help: "Events not sent because they were older than -notify-max-age when read: history a new notifier reads (counted only), or events read again after a restart or an outage (also dead-lettered, code stale)."}),
	}
	reg.MustRegister(m.delivered, m.retries, m.deadLetters, m.queued, m.latency, m.stale)
	return m
}
