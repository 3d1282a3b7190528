// Command realfleet runs the pieces of a real Kubernetes control plane for clustercache's tests:
// `realfleet etcd --dir D` starts an embedded etcd on 127.0.0.1 and prints its client URL;
// `realfleet apiserver <kube-apiserver flags>` is kube-apiserver itself.
// One binary keeps the cold build to one link; each API server still runs as its own process, so one
// can be stopped, hung (SIGSTOP) or restarted without touching the others.
package main

import (
	"fmt"
	"os"
	"time"
)

// exitWithParent ends this process when the one that started it is gone (it was re-parented):
// servers started by a test never outlive it, even when the test is killed.
func exitWithParent() {
	parent := os.Getppid()
	go func() {
		for range time.Tick(time.Second) {
			if os.Getppid() != parent {
				fmt.Fprintln(os.Stderr, "realfleet: the parent process is gone; exiting")
				os.Exit(1)
			}
		}
	}()
}

func main() {
	exitWithParent()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: realfleet etcd --dir DIR | realfleet apiserver FLAGS...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "etcd":
		os.Exit(runEtcd(os.Args[2:]))
	case "apiserver":
		os.Exit(runAPIServer(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "realfleet: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
