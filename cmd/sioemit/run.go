package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/brokerflags"
	"github.com/siobridge/siobridge/internal/dialectname"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

const (
	exitOK      = 0
	exitBroker  = 1
	exitUsage   = 2
	exitTimeout = 3
)

const usageText = `usage:
  sioemit [flags] EVENT [ARG ...]        each ARG is JSON; an ARG that is not valid JSON is sent as a string
  sioemit [flags] join ROOM... | leave ROOM... | disconnect | close-room ROOM

flags:
  --url URL            broker URL (env SIOEMIT_URL; default redis://127.0.0.1:6379/0)
  --dialect NAME       ` + brokerflags.DialectNames + ` (env SIOEMIT_DIALECT; default python)
  --sharded-mode MODE  ` + dialectname.ShardedModes + `: with --dialect node-sharded, the
                       subscriptionMode of the servers' createShardedAdapter, which decides the
                       channel of an emit to one room (env SIOEMIT_SHARDED_MODE; default dynamic)
  --channel NAME       channel / key prefix (env SIOEMIT_CHANNEL; default flask-socketio, or socket.io for the node
                       dialects; node-streams: the channel prefix and the stream)
  -n, --namespace NS   default /
  --to ROOM            repeatable: a room or a sid (join/leave/disconnect act on these sockets)
  --except ROOM        repeatable (python peers: socket ids only)
  --ack                wait for acknowledgements and print each reply as one JSON line
  --timeout DUR        default 5s
  --batch FILE|-       JSON lines {"event":..,"args":[..],"to":[..],"except":[..],"namespace":..}
                       (lines of up to 1 MiB), published in order, in chunks of up to 1024;
                       an invalid line is reported and skipped; gives up after 3 failed chunks in a row
  --dry-run            print channel and payload (hex for binary dialects) instead of publishing
  --close              with disconnect: close the underlying connection too (node)
  --event NAME         the event name, when it is also a subcommand name (then every positional is an ARG)
  --volatile           node: drop the event for clients that cannot take it now
  -h, --help           this help

An ARG {"$binary":"<base64>"} is sent as binary data.
exit status: 0 ok, 1 broker or publish error, 2 usage error, 3 ack timeout (no or partial replies);
with --batch: 2 if any line was invalid, else 1 if any publish failed
`

type options struct {
	url, dialect, channel, namespace string
	shardedMode                      string // "" = the dialect's default
	to, except                       []string
	ack, dryRun, close, volatile     bool
	timeout                          time.Duration
	batch                            string
	event                            string
	eventSet                         bool
	positional                       []string
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func parseArgs(args []string, getenv func(string) string) (*options, error) {
	o := &options{
		url:         getenv("SIOEMIT_URL"),
		dialect:     getenv("SIOEMIT_DIALECT"),
		channel:     getenv("SIOEMIT_CHANNEL"),
		shardedMode: getenv("SIOEMIT_SHARDED_MODE"),
		namespace:   "/",
		timeout:     5 * time.Second,
	}
	if o.url == "" {
		o.url = "redis://127.0.0.1:6379/0"
	}
	if o.dialect == "" {
		o.dialect = "python"
	}
	onlyPositional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if onlyPositional || a == "-" || !strings.HasPrefix(a, "-") || looksNumeric(a) {
			o.positional = append(o.positional, a)
			continue
		}
		if a == "--" {
			onlyPositional = true
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", usagef("flag %s needs a value", a)
			}
			i++
			return args[i], nil
		}
		boolFlag := func(dst *bool) error {
			if !hasVal {
				*dst = true
				return nil
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return usagef("flag %s: %q is not a boolean", a, val)
			}
			*dst = b
			return nil
		}
		var err error
		switch name {
		case "url":
			o.url, err = value()
		case "dialect":
			o.dialect, err = value()
		case "channel":
			o.channel, err = value()
		case "sharded-mode":
			o.shardedMode, err = value()
		case "n", "namespace":
			o.namespace, err = value()
		case "to":
			var v string
			if v, err = value(); err == nil {
				o.to = append(o.to, v)
			}
		case "except":
			var v string
			if v, err = value(); err == nil {
				o.except = append(o.except, v)
			}
		case "ack":
			err = boolFlag(&o.ack)
		case "dry-run":
			err = boolFlag(&o.dryRun)
		case "close":
			err = boolFlag(&o.close)
		case "volatile":
			err = boolFlag(&o.volatile)
		case "timeout":
			var v string
			if v, err = value(); err == nil {
				if o.timeout, err = time.ParseDuration(v); err != nil || o.timeout <= 0 {
					err = usagef("--timeout %q is not a positive duration (e.g. 5s, 500ms)", v)
				}
			}
		case "batch":
			o.batch, err = value()
		case "event":
			o.event, err = value()
			o.eventSet = true
		case "h", "help":
			return nil, usageError{""}
		default:
			return nil, usagef("unknown flag %s", a)
		}
		if err != nil {
			return nil, err
		}
	}
	return o, nil
}

func looksNumeric(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// parseArg reads one command-line argument: JSON, else a string.
func parseArg(s string) (any, error) {
	if !json.Valid([]byte(s)) {
		return s, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return s, nil
	}
	v, err := op.FromJSON(v)
	if err != nil {
		return nil, err
	}
	return binaryConvention(v)
}

// binaryConvention turns {"$binary":"<base64>"} objects into []byte.
func binaryConvention(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if b64, ok := x["$binary"].(string); ok && len(x) == 1 {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, usagef("invalid $binary base64: %v", err)
			}
			return b, nil
		}
		for k, e := range x {
			c, err := binaryConvention(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
	case []any:
		for i, e := range x {
			c, err := binaryConvention(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
	}
	return v, nil
}

func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, getenv)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) && ue.msg == "" {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
		fmt.Fprintf(stderr, "sioemit: %v\n\n%s", err, usageText)
		return exitUsage
	}
	d, err := newDialect(o.dialect, o.channel, o.shardedMode)
	if err != nil {
		fmt.Fprintf(stderr, "sioemit: %v\n", err)
		return exitUsage
	}
	c := &cli{o: o, d: d, stdin: stdin, stdout: stdout, stderr: stderr}
	return c.main()
}

type cli struct {
	o              *options
	d              dialect.Dialect
	bus            queue.Bus
	em             *emitter.Emitter
	stdin          io.Reader
	stdout, stderr io.Writer
	outMu          sync.Mutex
}

// action is one thing to do: an op to publish, or an emit with ack.
type action struct {
	o   op.Op
	ack bool
}

func (c *cli) main() int {
	o := c.o
	var actions []action
	if o.batch == "" {
		a, err := c.commandAction()
		if err != nil {
			return c.fail(err)
		}
		// Refuse what the dialect cannot do before touching the broker.
		if _, err := c.d.Encode(a.o); err != nil {
			return c.fail(err)
		}
		actions = append(actions, a)
	} else if len(o.positional) > 0 || o.ack {
		return c.fail(usagef("--batch takes no EVENT, ARG or --ack"))
	}
	if o.dryRun {
		if o.batch != "" {
			return c.batch(true)
		}
		return c.dryRun(actions[0].o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	bus, err := brokerflags.Open(ctx, o.url)
	cancel()
	if err != nil {
		fmt.Fprintf(c.stderr, "sioemit: %v\n", err)
		return exitBroker
	}
	defer bus.Close()
	c.bus = bus
	c.em = emitter.New(bus, c.d)
	defer c.em.Close()
	if o.batch != "" {
		return c.batch(false)
	}
	return c.do(actions[0])
}

func (c *cli) fail(err error) int {
	fmt.Fprintf(c.stderr, "sioemit: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, dialect.ErrUnsupported) {
		return exitUsage
	}
	if errors.Is(err, emitter.ErrAckTimeout) {
		return exitTimeout
	}
	return exitBroker
}

func (c *cli) target() op.Target {
	return op.Target{Namespace: op.NamespaceOrRoot(c.o.namespace), Rooms: c.o.to, Except: c.o.except}
}

func (c *cli) commandAction() (action, error) {
	o := c.o
	pos := o.positional
	if !o.eventSet && len(pos) > 0 {
		switch pos[0] {
		case "join", "leave":
			if len(pos) < 2 {
				return action{}, usagef("%s needs at least one ROOM", pos[0])
			}
			if len(o.to) == 0 {
				return action{}, usagef("%s needs --to: the sockets (sids or rooms) that %s", pos[0], pos[0])
			}
			if pos[0] == "join" {
				return action{o: &op.Join{Target: c.target(), Rooms: pos[1:]}}, nil
			}
			return action{o: &op.Leave{Target: c.target(), Rooms: pos[1:]}}, nil
		case "disconnect":
			if len(pos) != 1 {
				return action{}, usagef("disconnect takes no arguments; name the sockets with --to")
			}
			return action{o: &op.Disconnect{Target: c.target(), Close: o.close}}, nil
		case "close-room":
			if len(pos) != 2 {
				return action{}, usagef("close-room needs exactly one ROOM")
			}
			return action{o: &op.CloseRoom{Namespace: op.NamespaceOrRoot(o.namespace), Room: pos[1]}}, nil
		}
	}
	event := o.event
	argv := pos
	if !o.eventSet {
		if len(pos) == 0 {
			return action{}, usagef("missing EVENT")
		}
		event, argv = pos[0], pos[1:]
	}
	if err := op.ValidateEvent(event); err != nil {
		return action{}, usagef("%v", err)
	}
	args := make([]any, 0, len(argv))
	for _, a := range argv {
		v, err := parseArg(a)
		if err != nil {
			return action{}, err
		}
		args = append(args, v)
	}
	args, err := op.NormalizeArgs(args)
	if err != nil {
		return action{}, usagef("%v", err)
	}
	e := &op.Emit{Target: c.target(), Event: event, Args: args, Volatile: o.volatile}
	if o.ack {
		e.Ack = &op.AckRequest{ID: c.d.NewAckID(), Timeout: o.timeout}
	}
	return action{o: e, ack: o.ack}, nil
}

func (c *cli) dryRun(o op.Op) int {
	msgs, err := c.d.Encode(o)
	if err != nil {
		return c.fail(err)
	}
	c.printMsgs(msgs)
	return exitOK
}

func (c *cli) printMsgs(msgs []queue.Message) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	for _, m := range msgs {
		if m.Stream {
			fmt.Fprintf(c.stdout, "%s\t%s\n", m.Channel, streamEntry(m))
			continue
		}
		payload := string(m.Data)
		if !isText(m.Data) {
			payload = hex.EncodeToString(m.Data)
		}
		fmt.Fprintf(c.stdout, "%s\t%s\n", m.Channel, payload)
	}
}

// streamEntry is the XADD of a stream entry, its values quoted as Go
// strings: XADD MAXLEN ~ 10000 * uid "emitter" nsp "/" ...
func streamEntry(m queue.Message) string {
	var b strings.Builder
	b.WriteString("XADD")
	if m.MaxLen > 0 {
		fmt.Fprintf(&b, " MAXLEN ~ %d", m.MaxLen)
	}
	b.WriteString(" *")
	queue.StreamFields(m.Data, func(f, v []byte) bool {
		fmt.Fprintf(&b, " %s %s", f, strconv.Quote(string(v)))
		return true
	})
	return b.String()
}

func isText(b []byte) bool {
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

func (c *cli) operator(t op.Target) *emitter.Operator {
	opr := c.em.Of(t.Namespace).To(t.Rooms...).Except(t.Except...).Timeout(c.o.timeout)
	if c.o.volatile {
		opr = opr.Volatile()
	}
	return opr
}

func (c *cli) do(a action) int {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.timeout)
	defer cancel()
	if a.ack {
		e := a.o.(*op.Emit)
		replies, err := c.operator(e.Target).EmitWithAck(ctx, e.Event, e.Args...)
		for _, r := range replies {
			b, _ := json.Marshal(r)
			fmt.Fprintln(c.stdout, string(b))
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: %v", emitter.ErrAckTimeout, err)
			}
			return c.fail(err)
		}
		return exitOK
	}
	if err := c.publish(ctx, a.o); err != nil {
		return c.fail(err)
	}
	return exitOK
}

func (c *cli) publish(ctx context.Context, o op.Op) error {
	opr := func(t op.Target) *emitter.Operator { return c.operator(t) }
	switch x := o.(type) {
	case *op.Emit:
		return opr(x.Target).Emit(ctx, x.Event, x.Args...)
	case *op.Join:
		return opr(x.Target).SocketsJoin(ctx, x.Rooms...)
	case *op.Leave:
		return opr(x.Target).SocketsLeave(ctx, x.Rooms...)
	case *op.Disconnect:
		return opr(x.Target).DisconnectSockets(ctx, x.Close)
	case *op.CloseRoom:
		return c.em.Of(x.Namespace).CloseRoom(ctx, x.Room)
	}
	return fmt.Errorf("unexpected op %T", o)
}

func (c *cli) errorf(format string, a ...any) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fmt.Fprintf(c.stderr, "sioemit: "+format+"\n", a...)
}
