// Command pause is the pod sandbox's process of the test cluster
// (kubenode): it holds a pod's namespaces and does nothing until it is
// told to stop. No image registry is reachable here, so the cluster's
// sandbox image is built from it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
