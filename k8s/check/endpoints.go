package check

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

var ordinalRE = regexp.MustCompile(`^(.+)-([0-9]+)$`)

// checkEndpoint checks host:port against the objects of the set when the
// host is a cluster-internal name: a Service ("svc", "svc.ns.svc") or a
// StatefulSet pod behind its headless Service ("sts-N.svc[.ns.svc]").
// Names outside the cluster cannot be checked here and pass.
func (p *policy) checkEndpoint(ns, ep string) error {
	host, portStr, err := net.SplitHostPort(ep)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("port %q is not a number", portStr)
	}
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1 || (len(parts) >= 3 && parts[2] == "svc"):
		// A Service name.
		if len(parts) >= 3 {
			ns = parts[1]
		}
		if host == "localhost" || net.ParseIP(host) != nil {
			return fmt.Errorf("a loopback or fixed IP address does not reach another pod")
		}
		return p.checkServicePort(ns, parts[0], port)
	case len(parts) == 2 || (len(parts) >= 4 && parts[3] == "svc"):
		if len(parts) >= 4 {
			ns = parts[2]
		}
		m := ordinalRE.FindStringSubmatch(parts[0])
		if m == nil {
			return fmt.Errorf("%s is not <statefulset>-<ordinal>.<headless service>", host)
		}
		sts, ok := p.set.Find("StatefulSet", ns, m[1])
		if !ok {
			return fmt.Errorf("no StatefulSet %s in namespace %s", m[1], ns)
		}
		if sts.ServiceName != parts[1] {
			return fmt.Errorf("StatefulSet %s's pods are named through Service %s, not %s", m[1], sts.ServiceName, parts[1])
		}
		if n, _ := strconv.Atoi(m[2]); int32(n) >= sts.Replicas {
			return fmt.Errorf("StatefulSet %s has %d replicas: there is no %s", m[1], sts.Replicas, parts[0])
		}
		return p.checkServicePort(ns, parts[1], port)
	}
	return nil
}

func (p *policy) checkServicePort(ns, name string, port int) error {
	for _, svc := range p.set.Services {
		if svc.Namespace != ns || svc.Name != name {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if int(sp.Port) == port {
				return nil
			}
		}
		return fmt.Errorf("Service %s/%s has no port %d", ns, name, port)
	}
	return fmt.Errorf("no Service %s in namespace %s", name, ns)
}
