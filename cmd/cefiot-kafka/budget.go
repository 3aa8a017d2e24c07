package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/kafkaconf"
	"github.com/cefiot/cefiot/libs/pipeline"
)

// kafkaInternalPartitions is Kafka's default offsets.topic.num.partitions
// plus transaction.state.log.num.partitions, which the Kubernetes
// manifests' brokers run with.
const kafkaInternalPartitions = 50 + 50

// budgetProperties prints the broker settings of a site's disk budget (make
// generate writes them beside each overlay's kafka-budget.args).
func budgetProperties(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("budget-properties", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.String("disk-budget", "", "room of each broker's log dir, such as 19GiB (required)")
	ingress := fs.String("disk-budget-ingress", "0", "the most producers write to a broker per second, such as 8MiB, kept free beside the budget")
	brokers := fs.Int("brokers", 3, "brokers of the site's cluster")
	partitions := fs.Int("partitions", pipeline.DefaultPartitions, "partitions capture and enrich create their topics with")
	internal := fs.Int("internal-partitions", kafkaInternalPartitions, "offsets.topic.num.partitions plus transaction.state.log.num.partitions")
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	if *size == "" {
		return config.Invalid("disk-budget", "", "required")
	}
	budget, err := diskBudget(*size, *ingress)
	if err != nil {
		return err
	}
	if *brokers < 1 {
		return config.Invalid("brokers", strconv.Itoa(*brokers), "must be at least 1")
	}
	if *partitions < 1 {
		return config.Invalid("partitions", strconv.Itoa(*partitions), "must be at least 1")
	}
	budget.Brokers, budget.Topics, budget.InternalPartitions = *brokers, kafkaconf.SiteTopics(*partitions), *internal
	plan, err := kafkaconf.PlanBudget(*budget)
	if errors.Is(err, kafkaconf.ErrBudgetTooSmall) {
		return config.Invalid("disk-budget", *size, err.Error())
	}
	if err != nil {
		return fmt.Errorf("budget-properties: %w", err)
	}
	_, err = io.WriteString(stdout, kafkaconf.BudgetFile(plan))
	return err
}
