package ctl

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// listSites prints the edge sites the cloud's sink has heard from.
func listSites(ctx context.Context, cn *connection, site, addr string, out io.Writer, json bool) error {
	sinkAddr, err := cn.sink(site, addr)
	if err != nil {
		return err
	}
	conn, err := cn.dial(sinkAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r, err := cefiotv1.NewSinkServiceClient(conn).ListSites(ctx, &cefiotv1.ListSitesRequest{})
	if err != nil {
		return rpcErr("sites", err)
	}
	c := &ctl{out: out, json: json}
	if json {
		return c.printJSON(r)
	}
	var rows [][]string
	for _, s := range r.GetSites() {
		state := "live"
		if s.GetStale() {
			state = "STALE"
		}
		ago := time.Since(s.GetLastSeen().AsTime()).Round(time.Second)
		rows = append(rows, []string{s.GetSite(), state, ago.String() + " ago", linkName(s.GetLink()),
			strconv.FormatInt(s.GetBacklogRecords(), 10), fmt.Sprintf("%d (%d)", s.GetGapOffsets(), s.GetGaps()), labels(s.GetVersions())})
	}
	return c.table("SITE\tSTATE\tLAST SEEN\tLINK\tLAG (RECORDS)\tLOST (RANGES)\tVERSIONS", rows)
}

func linkName(l cefiotv1.LinkState) string {
	switch l {
	case cefiotv1.LinkState_LINK_STATE_UP:
		return "up"
	case cefiotv1.LinkState_LINK_STATE_DOWN:
		return "down"
	}
	return "unknown"
}
