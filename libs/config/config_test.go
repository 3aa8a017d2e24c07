package config

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParseEnvFallbackAndPrecedence(t *testing.T) {
	env := map[string]string{
		"CEFIOT_SITE":     "from-env",
		"CEFIOT_NODE":     "env-node",
		"CEFIOT_POLL_GAP": "2s",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	site := fs.String("site", "", "")
	node := fs.String("node", "", "")
	gap := fs.Duration("poll-gap", time.Second, "")
	if err := Parse(fs, []string{"-site", "from-flag"}, lookup); err != nil {
		t.Fatal(err)
	}
	if *site != "from-flag" || *node != "env-node" || *gap != 2*time.Second {
		t.Fatalf("got site=%q node=%q gap=%v", *site, *node, *gap)
	}
}

func TestParseBadEnvNamesKey(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "CEFIOT_POLL_GAP" {
			return "soon", true
		}
		return "", false
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("poll-gap", time.Second, "")
	err := Parse(fs, nil, lookup)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "poll-gap" || !strings.Contains(err.Error(), "CEFIOT_POLL_GAP") {
		t.Fatalf("want KeyError naming poll-gap, got %v", err)
	}
}

func TestCheckerJoinsErrors(t *testing.T) {
	var c Checker
	c.NotEmpty("site", " ")
	c.Check(false, "workers", "0", "must be at least 1")
	err := c.Err()
	if err == nil || !strings.Contains(err.Error(), `"site"`) || !strings.Contains(err.Error(), "must be at least 1") {
		t.Fatalf("got %v", err)
	}
	var ok Checker
	ok.NotEmpty("site", "edge")
	if ok.Err() != nil {
		t.Fatal("unexpected error")
	}
}

func TestParseRejectsPositionalArgs(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	if err := Parse(fs, []string{"extra"}, nil); err == nil {
		t.Fatal("want error")
	}
}

func TestParseBadFlagNamesKeyAndReason(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("batch-wait", time.Second, "")
	err := Parse(fs, []string{"-batch-wait", "soon"}, nil)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "batch-wait" || ke.Value != "soon" || !strings.Contains(err.Error(), "invalid duration") {
		t.Fatalf("got %v", err)
	}
}

func TestParseHelpCarriesUsage(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("batch-wait", time.Second, "longest wait")
	err := Parse(fs, []string{"-h"}, nil)
	var help *HelpError
	if !errors.Is(err, flag.ErrHelp) || !errors.As(err, &help) || !strings.Contains(help.Usage, "-batch-wait duration") {
		t.Fatalf("want HelpError with the flag defaults, got %v", err)
	}
}

func TestParseUsageAndCheckArgs(t *testing.T) {
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.Int("batch-size", 200, "records")
	fs.String("grpc-addr", "127.0.0.1:9102", "listen")
	fs.Bool("verbose", false, "more logs")
	flags, err := ParseUsage("Usage of svc:\n" + Usage(fs))
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) != 3 || flags["batch-size"] != "200" || flags["grpc-addr"] != "127.0.0.1:9102" {
		t.Fatalf("parsed %v", flags)
	}
	if err := CheckArgs(flags, []string{"-batch-size", "5", "-grpc-addr", "x"}); err != nil {
		t.Fatal(err)
	}
	err = CheckArgs(flags, []string{"-batch-size", "5", "-batchsize", "6", "stray", "x"})
	if err == nil || !strings.Contains(err.Error(), "unknown flag -batchsize") || !strings.Contains(err.Error(), `"stray"`) {
		t.Fatalf("want the unknown flag and the stray argument named, got %v", err)
	}
}
