// Command cefiot-acls prints, creates or deletes the Kafka ACLs of a site
// (libs/kafkaacl): what each stage may do in the site's own cluster, and in
// the cloud cluster what the cloud's stages and each site's bridge may do.
// The brokers' StandardAuthorizer refuses everything else.
//
//	cefiot-acls -cluster edge -site edge                         # print them
//	cefiot-acls -cluster cloud -site cloud -sites edge,edge-2 \
//	  -bootstrap kafka-0.kafka-headless:9092 \
//	  -tls-cert pki/cloud/kafka.crt -tls-key pki/cloud/kafka.key -tls-ca pki/cloud/ca.crt -apply
//	cefiot-acls -cluster cloud -site cloud -sites edge -nodes board-1,board-2 ...  # one cloud credential per board
//	cefiot-acls -cluster cloud -site cloud -sites edge -nodes board-2 ... -revoke  # lock stolen board-2 out
//	cefiot-acls -cluster cloud -site cloud -sites edge-2 ... -revoke                # lock site edge-2 out
//
// -apply and -revoke act as the brokers' own identity (the cluster's super
// user): run them where the kafka key pair is, once per change.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/kafkaacl"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/libs/tlsx"
)

func main() {
	program.Main("cefiot-acls", func(ctx context.Context, args []string) error { return run(ctx, args, os.Stdout) })
}

type options struct {
	cluster, site, sites, nodes, operators, bootstrap string
	tls                                               tlsx.Flags
	apply, revoke                                     bool
}

func flags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("cefiot-acls", flag.ContinueOnError)
	fs.StringVar(&o.cluster, "cluster", "", "edge (a site's own cluster) or cloud")
	fs.StringVar(&o.site, "site", "", "the site whose cluster it is")
	fs.StringVar(&o.sites, "sites", "", "cloud: comma-separated edge sites whose bridges write to it (-revoke: the sites to lock out)")
	fs.StringVar(&o.nodes, "nodes", "", "cloud, with one site in -sites: its boards, each with its own cloud credential node/<board> (-revoke: the boards to lock out, not the site)")
	fs.StringVar(&o.operators, "operators", "", "comma-separated people (operator/<name>) who may read every topic (kcat)")
	fs.StringVar(&o.bootstrap, "bootstrap", "", "-apply/-revoke: the cluster's bootstrap servers")
	fs.BoolVar(&o.apply, "apply", false, "create the ACLs (an existing one is no error)")
	fs.BoolVar(&o.revoke, "revoke", false, "cloud: lock -sites (every grant on their names is deleted), or only their boards -nodes (refused everything), out at their next request")
	o.tls.Register(fs)
	return fs
}

// grants are the ACLs the options name.
func grants(o options) ([]kafkaacl.Grant, error) {
	var out []kafkaacl.Grant
	sites := config.List(o.sites)
	switch o.cluster {
	case "edge":
		out = kafkaacl.Edge(o.site)
	case "cloud":
		out = kafkaacl.Cloud(o.site)
		for _, s := range sites {
			out = append(out, kafkaacl.CloudSite(s, config.List(o.nodes)...)...)
		}
	default:
		return nil, &config.KeyError{Key: "cluster", Value: o.cluster, Reason: "want edge or cloud"}
	}
	for _, name := range config.List(o.operators) {
		out = append(out, kafkaacl.Reader(pki.Identity{Site: o.site, Component: access.OperatorPrefix + name})...)
	}
	return out, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flags(&o)
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	if err := (pki.Identity{Site: o.site, Component: "kafka"}).Validate(); err != nil {
		return &config.KeyError{Key: "site", Value: o.site, Reason: err.Error()}
	}
	if o.revoke && o.sites == "" {
		return &config.KeyError{Key: "sites", Value: "", Reason: "-revoke needs the sites to lock out"}
	}
	if o.nodes != "" && len(config.List(o.sites)) != 1 {
		return &config.KeyError{Key: "nodes", Value: o.nodes, Reason: "boards belong to one site: give exactly one in -sites"}
	}
	if o.revoke && o.cluster != "cloud" {
		return &config.KeyError{Key: "cluster", Value: o.cluster, Reason: "-revoke locks a site or a board out of the cloud: give -cluster cloud"}
	}
	gs, err := grants(o)
	if err != nil {
		return err
	}
	if !o.apply && !o.revoke {
		for _, g := range gs {
			fmt.Fprintln(out, g)
		}
		return nil
	}
	var ch config.Checker
	ch.NotEmpty("bootstrap", o.bootstrap)
	o.tls.Validate(&ch)
	if err := ch.Err(); err != nil {
		return err
	}
	conn := kafkax.Conn{Bootstrap: o.bootstrap}
	if !o.tls.InsecurePlaintext {
		files := o.tls.Files()
		conn.TLS = &files
	}
	admin, err := kafka.NewAdminClient(conn.Config(nil))
	if err != nil {
		return fmt.Errorf("kafka admin client for %s: %w", conn, err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if o.revoke {
		return revoke(ctx, admin, o, conn, out)
	}
	if err := kafkaacl.Apply(ctx, admin, gs); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d ACLs created on %s\n", len(gs), conn)
	return nil
}

// revoke locks the boards -nodes of the site, or else every site of -sites,
// out of the cloud cluster.
func revoke(ctx context.Context, admin *kafka.AdminClient, o options, conn kafkax.Conn, out io.Writer) error {
	sites := config.List(o.sites)
	if nodes := config.List(o.nodes); len(nodes) > 0 {
		for _, n := range nodes {
			if err := kafkaacl.RevokeNode(ctx, admin, sites[0], n); err != nil {
				return err
			}
			fmt.Fprintf(out, "board %s of site %s locked out of %s (its credential is refused everything)\n", n, sites[0], conn)
		}
		return nil
	}
	for _, s := range sites {
		n, err := kafkaacl.RevokeSite(ctx, admin, s)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "site %s locked out of %s (%d ACLs deleted)\n", s, conn, n)
	}
	return nil
}
