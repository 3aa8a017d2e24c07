package sink

import (
	"context"
	"fmt"
	"io"
	"time"
)

// RebuildIndex rebuilds the configured index from the configured object
// store (store.Store.Rebuild): for a lost bbolt file or a dropped
// database. The sinks should be stopped (a running bbolt sink holds its
// file; running PostgreSQL replicas are harmless, the index inserts a
// frame once). It prints what it did to out and fails when a meta object
// could not be used.
func RebuildIndex(ctx context.Context, cfg Config, out io.Writer) error {
	logger := cfg.Common.Logger("sink")
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	start := time.Now()
	rep, err := st.Rebuild(ctx)
	if err != nil {
		return fmt.Errorf("rebuild index %s: %w", st.Index().Describe(), err)
	}
	fmt.Fprintf(out, "index:            %s\n", st.Index().Describe())
	fmt.Fprintf(out, "objects:          %s\n", st.Objects().Describe())
	fmt.Fprintf(out, "meta objects:     %d\n", rep.MetaObjects)
	fmt.Fprintf(out, "frames indexed:   %d\n", rep.Indexed)
	fmt.Fprintf(out, "already indexed:  %d\n", rep.AlreadyIndexed)
	fmt.Fprintf(out, "no picture:       %d\n", len(rep.NoPicture))
	fmt.Fprintf(out, "unreadable:       %d\n", len(rep.Unreadable))
	fmt.Fprintf(out, "JPEGs, no meta:   %d\n", rep.WithoutMeta)
	fmt.Fprintf(out, "took:             %s\n", time.Since(start).Round(time.Millisecond))
	for _, k := range rep.Unreadable {
		fmt.Fprintf(out, "unreadable meta object: %s\n", k)
	}
	if len(rep.Unreadable) > 0 {
		return fmt.Errorf("rebuild index: %d meta objects could not be read (listed above)", len(rep.Unreadable))
	}
	return nil
}
