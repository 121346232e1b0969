package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/queue"
)

// Reading streams (queue.Subscription.Streams), as
// @socket.io/redis-streams-adapter reads its stream.
const (
	// StreamReadCount is the most entries one XREAD returns (the adapter's
	// readCount). A reader hands each entry of a reply to the handler as
	// it reads it, before reading the next, so it holds one entry at a
	// time (bounded by WithStreamEntryMaxBytes) and a slow handler slows
	// the reader instead of queueing: the entries wait in the stream
	// (bounded by the writers' MAXLEN) or in the socket.
	StreamReadCount = 100
	// StreamBlock is how long one XREAD waits for new entries
	// (blockTimeInMs).
	StreamBlock = 5 * time.Second
	// streamRetryMax bounds the pause between reconnection attempts.
	streamRetryMax = 2 * time.Second
	// streamIdle is how long a reader's connection may stay silent (a
	// blocked XREAD answers within StreamBlock) before it is dropped.
	streamIdle = StreamBlock + 10*time.Second
)

// the XREAD arguments
var (
	streamCountArg = strconv.Itoa(StreamReadCount)
	streamBlockArg = strconv.FormatInt(StreamBlock.Milliseconds(), 10)
)

// streamReader reads one stream for a subscription, on a connection of
// its own (XREAD BLOCK holds it), from the entry after last. It reads the
// replies itself (xreadParser): the entries reach the handler one at a
// time as they are read, and one larger than the bus's bound is skipped.
type streamReader struct {
	b     *Bus
	key   string
	h     queue.Handler
	start string // the stream's last entry when subscribing
	last  string // id of the last entry delivered or skipped (start before the first)

	// used by run only
	conn *rawConn // to node's server
	x    xreadParser
	cmd  []byte

	mu        sync.Mutex
	node      *goredis.Client // the client whose server conn is on (for CLIENT UNBLOCK)
	id        int64           // conn's CLIENT ID, to unblock it
	reconnect bool            // restart asked: drop conn after the current read

	stop chan struct{}
	done chan struct{}
}

// startStream reads stream key for h from the entries appended after it
// returns.
func (b *Bus) startStream(ctx context.Context, key string, h queue.Handler) (*streamReader, error) {
	last, err := b.lastEntry(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("redis: read stream %q on %s: %w", key, b.url, forbidden(err))
	}
	r := &streamReader{b: b, key: key, h: h, start: last, last: last, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r, nil
}

// lastEntry returns the id of the last entry of stream key, "0-0" when it
// has none (as XREAD's "$" at this moment, but fixed: what is appended
// from now on is read even if the reader connects later).
func (b *Bus) lastEntry(ctx context.Context, key string) (string, error) {
	l, err := b.client.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(l) == 0 {
		return "0-0", nil
	}
	return l[0].ID, nil
}

// run reads until close, reconnecting (and resuming after the last entry
// delivered) when the connection fails.
func (r *streamReader) run() {
	defer close(r.done)
	defer r.drop()
	backoff := 100 * time.Millisecond
	failing := false
	for {
		if r.stopped() {
			return
		}
		err := r.connect()
		for err == nil {
			err = r.read()
			if r.stopped() {
				return
			}
			if err == nil {
				if failing {
					r.b.log.Info("redis: reading the stream again", "url", r.b.url, "stream", r.key, "after", r.last)
					failing, backoff = false, 100*time.Millisecond
				}
				err = r.restartAsked()
			}
		}
		r.drop()
		if !failing && !errors.Is(err, errRestart) {
			r.b.log.Warn("redis: reading the stream failed: reconnecting", "url", r.b.url, "stream", r.key, "after", r.last, "err", err)
			failing = true
		}
		if errors.Is(err, errRestart) {
			continue
		}
		if cc, ok := r.b.client.(*goredis.ClusterClient); ok {
			cc.ReloadState(r.b.ctx) // the stream's master may have changed
		}
		select {
		case <-r.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, streamRetryMax)
	}
}

var errRestart = errors.New("restart asked")

// restartAsked reports errRestart once after restart.
func (r *streamReader) restartAsked() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reconnect {
		r.reconnect = false
		return errRestart
	}
	return nil
}

// read sends one XREAD (after r.last) and hands the entries of its reply
// to the handler as they are read, in order. A null reply (the BLOCK
// timeout, or CLIENT UNBLOCK) has none.
func (r *streamReader) read() error {
	r.cmd = appendCommand(r.cmd[:0], "XREAD", "COUNT", streamCountArg, "BLOCK", streamBlockArg, "STREAMS", r.key, r.last)
	r.conn.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := r.conn.nc.Write(r.cmd); err != nil {
		return err
	}
	return r.x.read(r.deliver, r.skip)
}

// deliver hands the entry id to the handler (false once the reader
// stopped: the rest of the reply is not read).
func (r *streamReader) deliver(id string, data []byte) bool {
	if r.stopped() {
		return false
	}
	r.last = id
	r.b.ctr.Delivered.Add(1)
	r.h(queue.Message{Channel: r.key, Stream: true, ID: id, Data: data})
	return true
}

// skip counts and logs entry id, of size bytes, too large to deliver.
func (r *streamReader) skip(id string, size int64) {
	r.last = id
	r.b.streamDropped.Add(1)
	r.b.log.Warn("redis: dropped a stream entry larger than the bound (WithStreamEntryMaxBytes)",
		"url", r.b.url, "stream", r.key, "id", id, "bytes", size, "max", r.x.max)
}

// StreamMessage returns the queue.Message a subscription to stream
// delivers for its entry e (Stream and ID set, the fields in Data), for
// code that reads a stream itself (XRANGE) and decodes its entries as a
// dialect does.
func StreamMessage(stream string, e goredis.XMessage) queue.Message {
	return queue.Message{Channel: stream, Stream: true, ID: e.ID, Data: entryData(e.Values)}
}

// entryData writes an entry's fields as a Stream message's Data, in field
// name order (go-redis gives them as a map: the entry's order is lost; a
// field written twice counts once, as the Node adapter reads it). A
// subscription's reader keeps the entry's own order instead.
func entryData(values map[string]any) []byte {
	fields := make([]string, 0, len(values))
	size := 0
	for f, v := range values {
		fields = append(fields, f)
		s, _ := v.(string)
		size += len(f) + len(s) + 20
	}
	sort.Strings(fields)
	b := make([]byte, 0, size)
	for _, f := range fields {
		s, _ := values[f].(string)
		b = queue.AppendStreamField(b, f, s)
	}
	return b
}

// connect takes a connection of the stream's master for the reader.
func (r *streamReader) connect() error {
	ctx, cancel := context.WithTimeout(r.b.ctx, 5*time.Second)
	defer cancel()
	var node *goredis.Client
	switch c := r.b.client.(type) {
	case *goredis.ClusterClient:
		n, err := c.MasterForKey(ctx, r.key)
		if err != nil {
			return fmt.Errorf("no master for stream %q: %w", r.key, err)
		}
		node = n
	case *goredis.Client:
		node = c
	default:
		return fmt.Errorf("streams need a Redis server, a Sentinel or a Cluster client, not %T", r.b.client)
	}
	conn, err := dialRaw(node.Options(), streamIdle)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	conn.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err = conn.nc.Write(appendCommand(nil, "CLIENT", "ID"))
	var id int64
	if err == nil {
		id, err = respReader{conn.r}.header(':', math.MaxInt64)
	}
	if err != nil {
		conn.close()
		return fmt.Errorf("CLIENT ID: %w", err)
	}
	r.conn = conn
	r.x = xreadParser{p: respReader{conn.r}, key: r.key, max: r.b.streamMax, buf: r.x.buf}
	r.mu.Lock()
	r.node, r.id = node, id
	r.mu.Unlock()
	return nil
}

// drop closes the reader's connection.
func (r *streamReader) drop() {
	r.mu.Lock()
	r.node, r.id = nil, 0
	r.mu.Unlock()
	if r.conn != nil {
		r.conn.close()
		r.conn = nil
	}
}

func (r *streamReader) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// unblock ends the XREAD the reader may be blocked in (CLIENT UNBLOCK:
// it returns as if it timed out).
func (r *streamReader) unblock() {
	r.mu.Lock()
	node, id := r.node, r.id
	r.mu.Unlock()
	if node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.b.ctx, time.Second)
	defer cancel()
	node.ClientUnblock(ctx, id)
}

// restart makes the reader take a new connection (a Sentinel failover),
// resuming after the last entry delivered.
func (r *streamReader) restart() {
	r.mu.Lock()
	r.reconnect = true
	r.mu.Unlock()
	r.unblock()
}

// close stops the reader and waits for it: no handler call starts after
// it returns. It must not be called from the handler.
func (r *streamReader) close() {
	close(r.stop)
	for {
		r.unblock() // again until it ends: it may have been between two reads
		select {
		case <-r.done:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
