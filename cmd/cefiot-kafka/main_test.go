package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/kafkaconf"
)

func TestUpRefusesABadDiskBudget(t *testing.T) {
	for _, c := range []struct {
		args        []string
		key, reason string
	}{
		{[]string{"--disk-budget", "lots"}, "disk-budget", "size"},
		{[]string{"--disk-budget", "0"}, "disk-budget", "positive"},
		{[]string{"--disk-budget", "20GiB", "--disk-budget-ingress", "fast"}, "disk-budget-ingress", "size"},
		// 11 partitions of 16 MiB records need more than 100 MiB.
		{[]string{"--disk-budget", "100MiB"}, "disk-budget", "too small"},
	} {
		// Refused before anything starts: jars that are not are enough.
		libs := t.TempDir()
		if err := os.WriteFile(filepath.Join(libs, "kafka_2.13-4.1.1.jar"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"up", "--dir", t.TempDir(), "--libs", libs}, c.args...)
		err := realMain(context.Background(), args, io.Discard, io.Discard)
		var ke *config.KeyError
		if !errors.As(err, &ke) || ke.Key != c.key || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%v: %v; want a %q error about %q", c.args, err, c.key, c.reason)
		}
	}
}

func TestBudgetProperties(t *testing.T) {
	var out strings.Builder
	if err := realMain(context.Background(), []string{"budget-properties", "-disk-budget", "19GiB", "-brokers", "3"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	plan, err := kafkaconf.PlanBudget(kafkaconf.Budget{Bytes: 19 << 30, Brokers: 3, Topics: kafkaconf.SiteTopics(3), InternalPartitions: 100})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != kafkaconf.BudgetFile(plan) {
		t.Errorf("budget-properties printed\n%s\nwant\n%s", out.String(), kafkaconf.BudgetFile(plan))
	}
	err = realMain(context.Background(), []string{"budget-properties", "-disk-budget", "300MiB"}, io.Discard, io.Discard)
	var ke *config.KeyError
	if !errors.As(err, &ke) || ke.Key != "disk-budget" || !strings.Contains(err.Error(), "too small") {
		t.Errorf("300 MiB for 3 brokers: %v, want a disk-budget error", err)
	}
	if err := realMain(context.Background(), []string{"budget-properties"}, io.Discard, io.Discard); !errors.As(err, &ke) || ke.Key != "disk-budget" {
		t.Errorf("no budget: %v, want a disk-budget error", err)
	}
}
