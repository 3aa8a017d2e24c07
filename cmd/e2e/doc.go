// Package e2e holds the end-to-end tests of cefiot: the real service
// binaries on real Kafka clusters and embedded etcd, composed by
// libs/harness/localstack exactly as `make run` composes them.
package e2e
