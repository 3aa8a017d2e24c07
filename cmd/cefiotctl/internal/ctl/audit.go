package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// audit lists the newest records of the site's audit trail (operators
// only), newest first.
func (c *ctl) audit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	who := fs.String("who", "", "")
	action := fs.String("action", "", "")
	result := fs.String("result", "", "")
	limit := fs.Int("limit", 20, "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	r, err := c.cli.ListAudit(ctx, &cefiotv1.ListAuditRequest{Who: *who, Action: *action, Result: *result, Limit: int32(*limit)})
	if err != nil {
		return rpcErr("audit", err)
	}
	if c.json {
		return c.printJSON(r)
	}
	var rows [][]string
	for _, a := range r.GetRecords() {
		who := a.GetWho()
		if a.GetVia() != "" {
			who += " via " + a.GetVia()
		}
		rows = append(rows, []string{
			a.GetTime().AsTime().Local().Format(time.DateTime), who, a.GetService() + " " + strings.TrimPrefix(a.GetAction(), "/cefiot.v1."),
			orDash(a.GetTarget()), orDash(a.GetFrom()), a.GetResult() + " " + a.GetCode(),
		})
	}
	return c.table("TIME\tWHO\tWHAT\tON\tFROM\tRESULT", rows)
}
