package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	cases := [][]string{
		{},
		{"--bogus", "x"},
		{"--timeout", "soon", "x"},
		{"--dialect", "cobol", "x"},
		{"connect"},
		{"join", "r1"},          // no --to
		{"--to", "s", "join"},   // no room
		{"close-room"},          // no room
		{"disconnect", "extra"}, // extra arg
		{"--dialect", "python-pickle", "--to", "s", "join", "r"},
		{"--ack", "x"}, // python ack needs exactly one sid
		{"--ack", "--to", "a", "--to", "b", "x"},
		{"--except", "x", "--to", "s", "disconnect"},
		{"--to"},
		{"--sharded-mode", "static", "x"}, // python
		{"--dialect", "node", "--sharded-mode", "dynamic", "x"},
		{"--dialect", "node-sharded", "--sharded-mode", "dynamic-public", "x"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, nil, "", c...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", c, code, stderr)
		}
		if !strings.Contains(stderr, "sioemit:") {
			t.Errorf("%q: no error message: %q", c, stderr)
		}
	}
	code, out, _ := runCLI(t, nil, "", "-h")
	if code != 0 || !strings.Contains(out, "exit status") {
		t.Errorf("-h: %d %q", code, out)
	}
}

func TestDryRun(t *testing.T) {
	code, out, stderr := runCLI(t, nil, "", "--dry-run", "-n", "/chat", "--to", "r1", "news", `{"n":1}`, "plain words", "-1", "--except", "s9")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	channel, payload, _ := strings.Cut(strings.TrimSpace(out), "\t")
	if channel != "flask-socketio" {
		t.Fatalf("channel %q", channel)
	}
	o, err := python.New(python.Options{}).Decode(queue.Message{Data: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	e := o.(*op.Emit)
	if e.Event != "news" || e.Namespace != "/chat" || e.Rooms[0] != "r1" || e.Except[0] != "s9" || len(e.Args) != 3 || e.Args[1] != "plain words" || e.Args[2] != int64(-1) {
		t.Fatalf("decoded %#v", e)
	}
	// pickle: hex payload, binary convention, env defaults
	env := map[string]string{"SIOEMIT_DIALECT": "python-pickle", "SIOEMIT_CHANNEL": "mychan"}
	code, out, _ = runCLI(t, env, "", "--dry-run", "bin", `{"$binary":"AQI="}`)
	channel, payload, _ = strings.Cut(strings.TrimSpace(out), "\t")
	b, err := hex.DecodeString(payload)
	if code != 0 || channel != "mychan" || err != nil {
		t.Fatalf("pickle dry run: %d %q", code, out)
	}
	o, err = python.NewPickle(python.Options{}).Decode(queue.Message{Data: b})
	if err != nil || !bytes.Equal(o.(*op.Emit).Args[0].([]byte), []byte{1, 2}) {
		t.Fatalf("pickle payload %#v %v", o, err)
	}
	// an event named like a subcommand
	code, out, _ = runCLI(t, nil, "", "--dry-run", "--event", "join", "r1")
	if code != 0 || !strings.Contains(out, `"event": "join"`) {
		t.Fatalf("--event join: %d %q", code, out)
	}
	// subcommands
	code, out, _ = runCLI(t, nil, "", "--dry-run", "--to", "SID1", "--to", "SID2", "join", "r1")
	if code != 0 || strings.Count(out, "enter_room") != 2 {
		t.Fatalf("join: %d %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "", "--dry-run", "close-room", "r1")
	if code != 0 || !strings.Contains(out, "close_room") {
		t.Fatalf("close-room: %d %q", code, out)
	}
}

// --sharded-mode (and SIOEMIT_SHARDED_MODE) choose the channel of an
// emit to one room as the servers' subscriptionMode does.
func TestShardedMode(t *testing.T) {
	sid := "8Hq2nC0d3xYbR7aAAAAB" // 20 characters: a socket id
	for _, c := range []struct {
		mode, to, want string
	}{
		{"", "r1", "socket.io#/#r1#"},
		{"", sid, "socket.io#/#"},
		{"dynamic", "r1", "socket.io#/#r1#"},
		{"static", "r1", "socket.io#/#"},
		{"static", sid, "socket.io#/#"},
		{"dynamic-private", sid, "socket.io#/#" + sid + "#"},
		{"dynamic-private", "r1", "socket.io#/#r1#"},
	} {
		args := []string{"--dry-run", "--dialect", "node-sharded", "--to", c.to, "ev"}
		if c.mode != "" {
			args = append([]string{"--sharded-mode", c.mode}, args...)
		}
		code, out, stderr := runCLI(t, nil, "", args...)
		if channel, _, _ := strings.Cut(out, "\t"); code != 0 || channel != c.want {
			t.Errorf("mode %q, to %s: exit %d, channel %q, want %q (%s)", c.mode, c.to, code, channel, c.want, stderr)
		}
		env := map[string]string{"SIOEMIT_DIALECT": "node-sharded", "SIOEMIT_SHARDED_MODE": c.mode}
		code, out, stderr = runCLI(t, env, "", "--dry-run", "--to", c.to, "ev")
		if channel, _, _ := strings.Cut(out, "\t"); code != 0 || channel != c.want {
			t.Errorf("SIOEMIT_SHARDED_MODE=%q, to %s: exit %d, channel %q, want %q (%s)", c.mode, c.to, code, channel, c.want, stderr)
		}
	}
	// in a batch too
	code, out, stderr := runCLI(t, nil, `{"event":"a","to":["r1"]}`+"\n", "--dry-run", "--dialect", "node-sharded", "--sharded-mode", "static", "--batch", "-")
	if code != 0 || !strings.HasPrefix(out, "socket.io#/#\t") {
		t.Errorf("batch in static mode: exit %d, %q (%s)", code, out, stderr)
	}
	code, _, stderr = runCLI(t, map[string]string{"SIOEMIT_SHARDED_MODE": "static"}, "", "--dry-run", "ev")
	if code != exitUsage || !strings.Contains(stderr, "node-sharded") {
		t.Errorf("SIOEMIT_SHARDED_MODE with the python dialect: exit %d, %q", code, stderr)
	}
}

func TestBatchDryRun(t *testing.T) {
	in := `{"event":"a","args":[1,"x"],"to":["r1"]}
{"event":"b","namespace":"/n"}

not json
{"event":"connect"}
`
	code, out, stderr := runCLI(t, nil, in, "--dry-run", "--batch", "-")
	if code != exitUsage {
		t.Fatalf("exit %d, want 2 for invalid lines", code)
	}
	if strings.Count(out, "flask-socketio\t") != 2 || !strings.Contains(out, "sent 2, failed 2") {
		t.Fatalf("out %q", out)
	}
	if !strings.Contains(stderr, "line 4") || !strings.Contains(stderr, "line 5") {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestBrokerErrors(t *testing.T) {
	port := testenv.FreePort(t)
	code, _, stderr := runCLI(t, nil, "", "--url", "redis://127.0.0.1:"+itoa(port), "--timeout", "500ms", "x")
	if code != exitBroker || !strings.Contains(stderr, "connect to") {
		t.Fatalf("unreachable broker: %d %q", code, stderr)
	}
	code, _, _ = runCLI(t, nil, "", "--url", "kafka://x", "x")
	if code != exitBroker {
		t.Fatalf("unknown scheme: %d", code)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPublishToRedis(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	bus, err := queue.Open(context.Background(), "redis://"+testenv.RedisAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	channel := "sioemit-test-" + strconvItoa(int(time.Now().UnixNano()%1e9))
	var mu sync.Mutex
	var got []queue.Message
	sub, err := bus.Subscribe(context.Background(), queue.Subscription{Channels: []string{channel}}, func(m queue.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	url := "redis://" + testenv.RedisAddr + "/0"
	if code, _, stderr := runCLI(t, nil, "", "--url", url, "--channel", channel, "--to", "r1", "hello", "[1,2]"); code != 0 {
		t.Fatalf("emit: %d %s", code, stderr)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "batch.jsonl")
	var lines []string
	for i := 0; i < 100; i++ {
		lines = append(lines, `{"event":"tick","args":[`+strconvItoa(i)+`],"to":["bench"]}`)
	}
	os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	code, out, stderr := runCLI(t, nil, "", "--url", url, "--channel", channel, "--batch", file)
	if code != 0 || !strings.Contains(out, "sent 100, failed 0") {
		t.Fatalf("batch: %d %q %q", code, out, stderr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 101 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want 101", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	o, err := python.New(python.Options{}).Decode(got[0])
	if err != nil || o.(*op.Emit).Event != "hello" {
		t.Fatalf("first message %v %v", o, err)
	}
	// an ack nobody answers: exit 3
	code, _, stderr = runCLI(t, nil, "", "--url", url, "--channel", channel, "--to", "nosuchsid", "--ack", "--timeout", "300ms", "q")
	if code != exitTimeout {
		t.Fatalf("ack timeout: %d %q", code, stderr)
	}
}

func strconvItoa(i int) string { return strconv.Itoa(i) }
