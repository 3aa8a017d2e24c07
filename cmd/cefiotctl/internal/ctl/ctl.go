// Package ctl is cefiotctl: the admin command line of cefiot sites. It
// talks to a site's scheduler admin API (gRPC); cross-site moves talk to
// both sites' schedulers (see libs/sitemove).
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/sitemove"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

const usage = `cefiotctl: admin command line of a cefiot site's scheduler

Usage: cefiotctl [-site S] [-scheduler HOST:PORT] [-o table|json] [-timeout D] COMMAND [ARGS]

cefiotctl calls with the client certificate its client config names, as
kubectl does with a kubeconfig: the file $CEFIOT_CONFIG, else
run/cefiotctl.yaml (written by make run), else
$XDG_CONFIG_HOME/cefiot/cefiotctl.yaml. The config lists each site's
scheduler address and the person's key pair and trust bundle in that site.

Global flags (each also as env CEFIOT_<NAME>, e.g. CEFIOT_SCHEDULER):
  -config     client config file (default: found as above)
  -site       site to talk to (default: the config's current-site)
  -scheduler  admin gRPC address of the site's scheduler (default: the config's)
  -sink       admin gRPC address of the cloud's sink, for sites (default: the config's)
  -insecure-plaintext
              call without TLS (only a scheduler started with the same flag answers)
  -o          output: table or json (default table)
  -timeout    deadline of one command (default 30s; move: 5m)

Commands:
  leader                          which replica leads the site
  nodes                           nodes, their labels, workers, state and workloads
  workers                         live workers (lease, kinds, labels)
  workloads                       declared workloads
  assignments [-watch]            who runs what (epoch, lease, claim); -watch streams changes
  get WORKLOAD                    one workload with its assignment and claim
  cordon NODE [-reason R]         no new placements on NODE
  uncordon NODE                   placements on NODE again
  drain NODE [-reason R]          cordon NODE and move its workloads elsewhere
  move WORKLOAD -node N           move to the least loaded fitting worker on node N
  move WORKLOAD -worker W         move to worker W
  move WORKLOAD -to-site S [-remote HOST:PORT]
                                  move between this (home) site and site S (its
                                  scheduler from the config, or -remote), while data flows
  apply -f SPEC.yaml              make the site's workloads those of the spec
  delete WORKLOAD                 remove a workload
  audit [-who W] [-action A] [-result ok|refused|failed] [-limit N]
                                  the site's audit trail, newest first (operators)
  sites                           every edge site the cloud hears from: last seen,
                                  stale, link, lag, gaps, versions (asks the cloud's
                                  sink, never a site)
  events [-camera C] [-label L] [-since D] [-limit N]
                                  stored motion events, newest first (default: the
                                  last 24h, 50): by camera, by object label ("person")
`

// Run runs one command line.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("cefiotctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("scheduler", envOr(lookupEnv, "CEFIOT_SCHEDULER", ""), "")
	sinkAddr := fs.String("sink", envOr(lookupEnv, "CEFIOT_SINK", ""), "")
	site := fs.String("site", envOr(lookupEnv, "CEFIOT_SITE", ""), "")
	configPath := fs.String("config", "", "")
	plaintext := fs.Bool("insecure-plaintext", envOr(lookupEnv, "CEFIOT_INSECURE_PLAINTEXT", "") == "true", "")
	output := fs.String("o", envOr(lookupEnv, "CEFIOT_O", "table"), "")
	timeout := fs.Duration("timeout", 0, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return fmt.Errorf("%v\n\n%s", err, usage)
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("flag -o %q: must be table or json", *output)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return fmt.Errorf("no command given\n\n%s", usage)
	}
	cmd, cargs := rest[0], rest[1:]
	if *timeout == 0 {
		*timeout = 30 * time.Second
		if cmd == "move" {
			*timeout = 5 * time.Minute
		}
	}
	if !(cmd == "assignments" && contains(cargs, "-watch")) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	cn, err := connect(*configPath, *plaintext, lookupEnv)
	if err != nil {
		return err
	}
	switch cmd {
	case "sites":
		return listSites(ctx, cn, *site, *sinkAddr, stdout, *output == "json")
	case "events":
		return listEvents(ctx, cn, *site, *sinkAddr, cargs, stdout, *output == "json")
	}
	home, err := cn.scheduler(*site, *addr)
	if err != nil {
		return err
	}
	conn, err := cn.dial(home)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := &ctl{cli: cefiotv1.NewSchedulerServiceClient(conn), conn: cn, site: *site, out: stdout, json: *output == "json"}
	switch cmd {
	case "leader":
		return c.leader(ctx)
	case "nodes":
		return c.nodes(ctx)
	case "workers":
		return c.workers(ctx)
	case "workloads":
		return c.workloads(ctx)
	case "assignments":
		return c.assignments(ctx, cargs)
	case "get":
		return c.get(ctx, cargs)
	case "cordon", "uncordon", "drain":
		return c.node(ctx, cmd, cargs)
	case "move":
		return c.move(ctx, home, cargs)
	case "apply":
		return c.apply(ctx, cargs)
	case "delete":
		return c.delete(ctx, cargs)
	case "audit":
		return c.audit(ctx, cargs)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}

func envOr(lookupEnv func(string) (string, bool), key, def string) string {
	if v, ok := lookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v || x == "-"+v || x == "--"+strings.TrimPrefix(v, "-") {
			return true
		}
	}
	return false
}

type ctl struct {
	cli  cefiotv1.SchedulerServiceClient
	conn *connection
	site string // -site, "" for the config's current site
	out  io.Writer
	json bool
}

// rpcErr turns a gRPC status into "CODE: message".
func rpcErr(what string, err error) error {
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s: %s", what, st.Code(), st.Message())
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (c *ctl) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(b))
	return err
}

func (c *ctl) table(header string, rows [][]string) error {
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func labels(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *ctl) leader(ctx context.Context) error {
	r, err := c.cli.GetLeader(ctx, &cefiotv1.GetLeaderRequest{})
	if err != nil {
		return rpcErr("leader", err)
	}
	if c.json {
		return c.printJSON(r)
	}
	return c.table("SITE\tLEADER", [][]string{{r.GetSite(), orDash(r.GetLeaderId())}})
}

func (c *ctl) nodes(ctx context.Context) error {
	r, err := c.cli.ListNodes(ctx, &cefiotv1.ListNodesRequest{})
	if err != nil {
		return rpcErr("nodes", err)
	}
	if c.json {
		return c.printJSON(r)
	}
	var rows [][]string
	for _, n := range r.GetNodes() {
		state := "ready"
		switch {
		case n.GetDrained():
			state = "drained"
		case n.GetCordoned():
			state = "cordoned"
		}
		if len(n.GetWorkerIds()) == 0 {
			state += ",no-workers"
		}
		rows = append(rows, []string{n.GetName(), state, labels(n.GetLabels()), orDash(strings.Join(n.GetWorkerIds(), ",")), orDash(strings.Join(n.GetWorkloads(), ","))})
	}
	return c.table("NODE\tSTATE\tLABELS\tWORKERS\tWORKLOADS", rows)
}

func (c *ctl) workers(ctx context.Context) error {
	r, err := c.cli.ListWorkers(ctx, &cefiotv1.ListWorkersRequest{})
	if err != nil {
		return rpcErr("workers", err)
	}
	if c.json {
		return c.printJSON(r)
	}
	var rows [][]string
	for _, w := range r.GetWorkers() {
		left := "-"
		if s := w.GetLeaseRemainingSeconds(); s > 0 {
			left = fmt.Sprintf("%.0fs", s)
		}
		rows = append(rows, []string{w.GetId(), w.GetNode(), strings.Join(w.GetKinds(), ","), labels(w.GetLabels()),
			fmt.Sprintf("%x/%ds", w.GetLeaseId(), w.GetLeaseTtlSeconds()), left, orDash(w.GetAdminHttpAddress())})
	}
	return c.table("WORKER\tNODE\tKINDS\tLABELS\tLEASE/TTL\tLEFT\tADMIN", rows)
}

func (c *ctl) workloads(ctx context.Context) error {
	r, err := c.cli.ListWorkloads(ctx, &cefiotv1.ListWorkloadsRequest{})
	if err != nil {
		return rpcErr("workloads", err)
	}
	if c.json {
		return c.printJSON(r)
	}
	var rows [][]string
	for _, w := range r.GetWorkloads() {
		site := orDash(w.GetSite())
		if w.GetHomeSite() != "" {
			site = "here (home " + w.GetHomeSite() + ")"
		}
		rows = append(rows, []string{w.GetName(), w.GetKind(), site, labels(w.GetNodeSelector()), orDash(w.GetSpreadBy()), labels(w.GetParams())})
	}
	return c.table("WORKLOAD\tKIND\tSITE\tNODE SELECTOR\tSPREAD\tPARAMS", rows)
}

func (c *ctl) assignments(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("assignments", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	watch := fs.Bool("watch", false, "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("assignments: %w", err)
	}
	if *watch {
		return c.watch(ctx)
	}
	r, err := c.cli.ListAssignments(ctx, &cefiotv1.ListAssignmentsRequest{})
	if err != nil {
		return rpcErr("assignments", err)
	}
	if c.json {
		return c.printJSON(r)
	}
	claims := map[string]*cefiotv1.Claim{}
	for _, cl := range r.GetClaims() {
		claims[cl.GetWorkload()] = cl
	}
	var rows [][]string
	for _, a := range r.GetAssignments() {
		rows = append(rows, []string{a.GetWorkload(), a.GetWorkerId(), a.GetNode(), fmt.Sprint(a.GetEpoch()), fmt.Sprintf("%x", a.GetLeaseId()),
			claimState(a, claims[a.GetWorkload()]), orDash(a.GetReason())})
	}
	return c.table("WORKLOAD\tWORKER\tNODE\tEPOCH\tLEASE\tCLAIM\tREASON", rows)
}

func claimState(a *cefiotv1.Assignment, cl *cefiotv1.Claim) string {
	switch {
	case cl == nil:
		return "none"
	case cl.GetWorkerId() != a.GetWorkerId():
		return fmt.Sprintf("held by %s (epoch %d)", cl.GetWorkerId(), cl.GetEpoch())
	case cl.GetFinished():
		return "finished"
	case cl.GetEpoch() != a.GetEpoch():
		return fmt.Sprintf("running (epoch %d)", cl.GetEpoch())
	}
	return "running"
}

func (c *ctl) watch(ctx context.Context) error {
	stream, err := c.cli.WatchAssignments(ctx, &cefiotv1.WatchAssignmentsRequest{})
	if err != nil {
		return rpcErr("watch", err)
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return rpcErr("watch", err)
		}
		if c.json {
			b, _ := protojson.Marshal(m)
			fmt.Fprintln(c.out, string(b))
			continue
		}
		now := time.Now().Format("15:04:05.000")
		kind := "change"
		if m.GetSnapshot() {
			kind = "snapshot"
		}
		for _, a := range m.GetAssignments() {
			fmt.Fprintf(c.out, "%s %s rev=%d assigned %s -> %s (node %s, epoch %d): %s\n", now, kind, m.GetRevision(), a.GetWorkload(), a.GetWorkerId(), a.GetNode(), a.GetEpoch(), orDash(a.GetReason()))
		}
		for _, w := range m.GetUnassigned() {
			fmt.Fprintf(c.out, "%s %s rev=%d unassigned %s\n", now, kind, m.GetRevision(), w)
		}
		for _, cl := range m.GetClaims() {
			st := "claimed"
			if cl.GetFinished() {
				st = "finished"
			}
			fmt.Fprintf(c.out, "%s %s rev=%d %s %s by %s (epoch %d)\n", now, kind, m.GetRevision(), st, cl.GetWorkload(), cl.GetWorkerId(), cl.GetEpoch())
		}
		for _, w := range m.GetReleased() {
			fmt.Fprintf(c.out, "%s %s rev=%d released %s\n", now, kind, m.GetRevision(), w)
		}
	}
}

// oneArg parses "NAME [flags]" or "[flags] NAME".
func oneArg(fs *flag.FlagSet, what string, args []string) (string, error) {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		return "", fmt.Errorf("%s: give the %s", fs.Name(), what)
	}
	return name, nil
}

func (c *ctl) get(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name, err := oneArg(fs, "workload name", args)
	if err != nil {
		return err
	}
	r, err := c.cli.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{Name: name})
	if err != nil {
		return rpcErr("get", err)
	}
	return c.printJSON(r)
}

func (c *ctl) node(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reason := fs.String("reason", "", "")
	node, err := oneArg(fs, "node name", args)
	if err != nil {
		return err
	}
	var st *cefiotv1.NodeState
	var resp proto.Message
	switch cmd {
	case "cordon":
		r, err := c.cli.CordonNode(ctx, &cefiotv1.CordonNodeRequest{Node: node, Reason: *reason})
		if err != nil {
			return rpcErr(cmd, err)
		}
		st, resp = r.GetState(), r
	case "uncordon":
		r, err := c.cli.UncordonNode(ctx, &cefiotv1.UncordonNodeRequest{Node: node})
		if err != nil {
			return rpcErr(cmd, err)
		}
		st, resp = r.GetState(), r
	case "drain":
		r, err := c.cli.DrainNode(ctx, &cefiotv1.DrainNodeRequest{Node: node, Reason: *reason})
		if err != nil {
			return rpcErr(cmd, err)
		}
		if c.json {
			return c.printJSON(r)
		}
		for _, a := range r.GetMoved() {
			fmt.Fprintf(c.out, "moved %s to %s on %s (epoch %d)\n", a.GetWorkload(), a.GetWorkerId(), a.GetNode(), a.GetEpoch())
		}
		for _, s := range r.GetNotMoved() {
			fmt.Fprintf(c.out, "stays %s\n", s)
		}
		fmt.Fprintf(c.out, "node %s drained\n", node)
		return nil
	}
	if c.json {
		return c.printJSON(resp)
	}
	state := "schedulable"
	if st.GetCordoned() {
		state = "cordoned"
	}
	fmt.Fprintf(c.out, "node %s %s\n", node, state)
	return nil
}

func (c *ctl) move(ctx context.Context, homeAddr string, args []string) error {
	fs := flag.NewFlagSet("move", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	node := fs.String("node", "", "")
	worker := fs.String("worker", "", "")
	toSite := fs.String("to-site", "", "")
	remote := fs.String("remote", "", "")
	name, err := oneArg(fs, "workload name", args)
	if err != nil {
		return err
	}
	if *toSite == "" {
		r, err := c.cli.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Workload: name, Node: *node, WorkerId: *worker})
		if err != nil {
			return rpcErr("move", err)
		}
		if c.json {
			return c.printJSON(r)
		}
		a := r.GetAssignment()
		fmt.Fprintf(c.out, "%s assigned to %s on %s (epoch %d); the old owner stops before the new one starts\n", a.GetWorkload(), a.GetWorkerId(), a.GetNode(), a.GetEpoch())
		return nil
	}
	if *node != "" || *worker != "" {
		return errors.New("move: -to-site moves between sites; -node and -worker move within one")
	}
	remoteSite := *toSite
	if *remote == "" && (remoteSite == c.site || (c.site == "" && c.conn.cfg != nil && remoteSite == c.conn.cfg.CurrentSite)) {
		// Moving back home: the other end is the site the workload is in.
		if remoteSite, err = c.conn.otherSite(c.site); err != nil {
			return fmt.Errorf("move: %w", err)
		}
	}
	if *remote, err = c.conn.scheduler(remoteSite, *remote); err != nil {
		return fmt.Errorf("move: the scheduler of site %s: %w (give -remote, its admin gRPC address)", *toSite, err)
	}
	homeLeader, err := c.cli.GetLeader(ctx, &cefiotv1.GetLeaderRequest{})
	if err != nil {
		return rpcErr("home site", err)
	}
	conn, err := c.conn.dial(*remote)
	if err != nil {
		return err
	}
	defer conn.Close()
	rcli := cefiotv1.NewSchedulerServiceClient(conn)
	remoteLeader, err := rcli.GetLeader(ctx, &cefiotv1.GetLeaderRequest{})
	if err != nil {
		return rpcErr("remote site", err)
	}
	home := sitemove.Site{Name: homeLeader.GetSite(), Client: c.cli}
	other := sitemove.Site{Name: remoteLeader.GetSite(), Client: rcli}
	if home.Name == other.Name {
		return fmt.Errorf("move: -scheduler %s and -remote %s both govern site %s", homeAddr, *remote, home.Name)
	}
	start := time.Now()
	res, err := sitemove.Move(ctx, home, other, name, *toSite, func(line string) {
		fmt.Fprintf(c.out, "%6.2fs  %s\n", time.Since(start).Seconds(), line)
	})
	if err != nil {
		return fmt.Errorf("move: %w", err)
	}
	fmt.Fprintf(c.out, "%6.2fs  %s runs in site %s (handoff %s)\n", time.Since(start).Seconds(), name, res.To, orDash(res.Handoff))
	return nil
}

func (c *ctl) apply(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("f", "", "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if *file == "" {
		return errors.New("apply: give the spec with -f FILE (- for stdin)")
	}
	var b []byte
	var err error
	if *file == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(*file)
	}
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	r, err := c.cli.ApplySpec(ctx, &cefiotv1.ApplySpecRequest{SpecYaml: string(b)})
	if err != nil {
		return rpcErr("apply "+*file, err)
	}
	if c.json {
		return c.printJSON(r)
	}
	fmt.Fprintf(c.out, "applied %d workloads (%d records changed)\n", len(r.GetWorkloads()), r.GetChanged())
	return nil
}

func (c *ctl) delete(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name, err := oneArg(fs, "workload name", args)
	if err != nil {
		return err
	}
	r, err := c.cli.DeleteWorkload(ctx, &cefiotv1.DeleteWorkloadRequest{Name: name})
	if err != nil {
		return rpcErr("delete", err)
	}
	if !r.GetDeleted() {
		return fmt.Errorf("delete: workload %s was not declared", name)
	}
	fmt.Fprintf(c.out, "deleted %s\n", name)
	return nil
}
