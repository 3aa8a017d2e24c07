package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// listEvents prints the stored motion events, newest first, as the
// cloud's sink has them: by camera, by object label, since a time.
func listEvents(ctx context.Context, cn *connection, site, addr string, args []string, out io.Writer, json bool) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	camera := fs.String("camera", "", "")
	label := fs.String("label", "", "")
	since := fs.Duration("since", 24*time.Hour, "")
	limit := fs.Int("limit", 50, "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("events: %v", err)
	}
	if *limit < 1 || *limit > 1000 {
		return fmt.Errorf("events: -limit %d: must be 1..1000", *limit)
	}
	sinkAddr, err := cn.sink(site, addr)
	if err != nil {
		return err
	}
	conn, err := cn.dial(sinkAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := &cefiotv1.ListEventsRequest{CameraId: *camera, Label: *label, NewestFirst: true, PageSize: int32(*limit)}
	if *since > 0 {
		req.StartTime = timestamppb.New(time.Now().Add(-*since))
	}
	r, err := cefiotv1.NewSinkServiceClient(conn).ListEvents(ctx, req)
	if err != nil {
		return rpcErr("events", err)
	}
	c := &ctl{out: out, json: json}
	if json {
		return c.printJSON(r)
	}
	var rows [][]string
	for _, e := range r.GetEvents() {
		state := "open"
		if e.GetEnded() {
			state = "ended"
		}
		rows = append(rows, []string{e.GetStartTime().AsTime().Local().Format(time.DateTime), e.GetSite(), e.GetCameraId(),
			e.GetEndTime().AsTime().Sub(e.GetStartTime().AsTime()).Round(100 * time.Millisecond).String(), state,
			strconv.FormatInt(e.GetFrameCount(), 10), strings.Join(e.GetLabels(), ","), e.GetBestFrameId(), e.GetEventId()})
	}
	return c.table("START\tSITE\tCAMERA\tLASTED\tSTATE\tFRAMES\tLABELS\tBEST FRAME\tEVENT", rows)
}
