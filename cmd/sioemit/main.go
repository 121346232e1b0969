// Command sioemit emits Socket.IO events, and changes rooms, through a
// message queue: the shell and cron-job face of package emitter.
//
//	sioemit [flags] EVENT [ARG ...]
//	sioemit [flags] join ROOM... | leave ROOM... | disconnect | close-room ROOM
//
// Each ARG is JSON; an ARG that is not valid JSON is sent as a string, and
// {"$binary":"<base64>"} is sent as binary. Run sioemit -h for the flags.
//
// Exit status: 0 ok, 1 broker or publish error, 2 usage error (including an
// operation the chosen dialect's peers cannot perform), 3 acknowledgement
// timeout (no or partial replies).
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
