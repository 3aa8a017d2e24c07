package service

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cefiot/cefiot/libs/tlsx"
)

// Restart back-off of RunReplica's run: the first restart after
// replicaRestartFirst, doubling up to replicaRestartMax; a run that lasted
// replicaRestartReset starts the back-off over.
const (
	replicaRestartFirst = time.Second
	replicaRestartMax   = 30 * time.Second
	replicaRestartReset = time.Minute
)

// RunReplica runs the admin server and run for the life of the process,
// without the site's scheduler: for a stage of which every replica works
// at once, coordinated by something else (the sink's replicas share a
// Kafka consumer group and an idempotent index), so that adding a replica
// is scaling a Deployment. run is started again, after a back-off, when it
// returns an error, and at once when the Kafka credentials change (with
// RestartOnNewKafkaCredentials).
func (p *Process) RunReplica(ctx context.Context, run func(context.Context) error) error {
	if p.audit != nil {
		defer p.audit.Close()
	}
	p.Admin.SetServing("", true)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Admin.Run(gctx) })
	if p.TLS != nil {
		g.Go(func() error { p.TLS.Watch(gctx, tlsx.ReloadInterval); return nil })
	}
	var changed <-chan struct{}
	if p.kafka != nil {
		g.Go(func() error { p.kafka.Run(gctx, tlsx.ReloadInterval); return nil })
		if p.restartOnKafka {
			changed = p.kafka.Changed()
		}
	}
	g.Go(func() error { return p.superviseReplica(gctx, run, changed) })
	return g.Wait()
}

// superviseReplica runs run until ctx ends, starting it again as
// RunReplica says.
func (p *Process) superviseReplica(ctx context.Context, run func(context.Context) error, changed <-chan struct{}) error {
	backoff := replicaRestartFirst
	for ctx.Err() == nil {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		started := time.Now()
		go func() { done <- run(rctx) }()
		var err error
		select {
		case err = <-done:
		case <-changed:
			p.Logger.Info("Kafka credentials changed; starting the replica's work again")
			cancel()
			if err := <-done; err != nil {
				p.Logger.Info("replica's work stopped for the new credentials", "err", err)
			}
			continue
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) >= replicaRestartReset {
			backoff = replicaRestartFirst
		}
		if err == nil {
			err = errors.New("returned before the process ended")
		}
		p.Logger.Error("replica's work stopped; starting it again", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, replicaRestartMax)
	}
	return nil
}
