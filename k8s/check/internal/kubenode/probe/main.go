// Command probe checks a test cluster's network (kubenode): "probe serve
// :8080" answers every connection with "ok"; "probe dial host:port" looks
// the host up in the cluster's DNS, connects, and exits 0 when it read
// "ok", 1 otherwise, retrying for 30 s.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probe serve :port | probe dial host:port")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "dial":
		os.Exit(dial(os.Args[2]))
	default:
		os.Exit(2)
	}
}

func serve(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue
		}
		_, _ = conn.Write([]byte("ok"))
		_ = conn.Close()
	}
}

func dial(addr string) int {
	var last error
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(conn)
		_ = conn.Close()
		if err == nil && string(b) == "ok" {
			fmt.Println("reached", addr)
			return 0
		}
		last = fmt.Errorf("read %q: %v", b, err)
	}
	fmt.Fprintln(os.Stderr, last)
	return 1
}
