// Package compat_test proves, against the real peers, that siobridge's bytes
// interoperate: Debian's Flask-SocketIO 5.3.2 / python-socketio 5.7.2
// servers and clients, and (node_test.go) Node socket.io 4.8 with
// @socket.io/redis-adapter 8 and @socket.io/redis-emitter 5. Every test
// starts its peers as real processes on loopback ports and talks through
// the real brokers.
package compat_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// sioemitBin and sioserverBin are the commands built for the tests.
var sioemitBin, sioserverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "siobridge-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sioemitBin = filepath.Join(dir, "sioemit")
	sioserverBin = filepath.Join(dir, "sioserver")
	for bin, pkg := range map[string]string{sioemitBin: "../cmd/sioemit", sioserverBin: "../cmd/sioserver"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
