// The node's sandbox (pause) image entrypoint: it holds a pod's namespaces until SIGTERM or
// SIGINT and reaps the children it inherits.
//
// `pause connect HOST:PORT` instead exits 0 once a TCP connection to HOST:PORT is accepted (1 with
// the error after 2 s): the cluster's start-up uses it to prove that a pod reaches a Service.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "connect" {
		conn, err := net.DialTimeout("tcp", os.Args[2], 2*time.Second)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		conn.Close()
		fmt.Println("connected to", os.Args[2])
		return
	}
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: pause | pause connect HOST:PORT")
		os.Exit(2)
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			pid, _ := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 {
				break
			}
		}
	}
}
