package emitter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/bufpool"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// Batch collects emits and publishes them together: one Publish call, so
// that the bus writes them in one round trip. Use it when a worker emits
// many events at once (a notification fan-out, an import); plain Emit calls
// from many goroutines are coalesced too, but each waits for its own
// broker reply. A Batch is not safe for concurrent use.
//
// A batch holds its encoded messages until Publish: bound what it holds
// with Len or Bytes (publish every few hundred emits, or every few hundred
// kilobytes). After Publish it keeps its buffers (up to maxKeptBatchMsgs
// messages and maxKeptBatchBytes of payload) for the next emits, so a
// Batch that is reused allocates less than a new one per round.
type Batch struct {
	e     *Emitter
	msgs  []queue.Message
	n     int
	bytes int
	// scratch is the op encoded by Emit: dialects do not keep the op they
	// encode, so one per batch saves an allocation per emit.
	scratch op.Emit
	// With a dialect.EmitAppender dialect, the payloads are appended to
	// buf (ends[i] is where msgs[i]'s ends) and msgs get their Data at
	// Publish: one buffer per batch instead of one per emit.
	app  dialect.EmitAppender
	buf  []byte
	ends []int
}

// Bounds of what a Batch keeps for reuse after Publish: a batch once
// filled with a million emits gives its buffers back to the garbage
// collector.
const (
	maxKeptBatchMsgs  = 4096    // messages (the list: 320 KiB)
	maxKeptBatchBytes = 1 << 20 // payload bytes
)

// NewBatch returns an empty batch.
func (e *Emitter) NewBatch() *Batch {
	b := &Batch{e: e}
	b.app, _ = e.d.(dialect.EmitAppender)
	return b
}

// Emit encodes an emit of event to o's selection and adds it to the
// batch. Encoding errors (invalid event, unencodable argument, an emit the
// dialect's peers cannot perform) are returned now, and leave the batch as
// it was; nothing is published before Publish.
func (b *Batch) Emit(o *Operator, event string, args ...any) error {
	if o.e != b.e {
		return errors.New("emitter: batch: operator of another emitter")
	}
	var err error
	if b.app != nil {
		// the dialect writes plain data as it is and says when it
		// cannot: no walk over the arguments to check them first
		if err = o.fillEmitAsIs(&b.scratch, event, args); err == nil {
			err = b.add(nil)
		}
		if errors.Is(err, dialect.ErrNoFastPath) {
			err = o.fillEmit(&b.scratch, event, args)
			if err == nil {
				err = b.add(nil)
			}
		}
	} else if err = o.fillEmit(&b.scratch, event, args); err == nil {
		err = b.add(nil)
	}
	b.scratch = op.Emit{} // keep no reference to the caller's arguments
	if err != nil {
		return fmt.Errorf("emitter: batch emit %q to %s: %w", event, o.describe(), err)
	}
	return nil
}

// EmitJSON is Emit with the arguments given as the JSON text of an array
// (or null for none), as a file or a queue of JSON lines carries them:
// the values are what encoding/json decodes (integers exact, see
// op.Normalize). Dialects that can write JSON arguments straight into
// their encoding (dialect.EmitAppender: the node dialect) do so without
// decoding them into Go values; the others get the decoded values.
// Invalid JSON, or JSON that is not an array, is an error.
func (b *Batch) EmitJSON(o *Operator, event string, args []byte) error {
	if o.e != b.e {
		return errors.New("emitter: batch: operator of another emitter")
	}
	err := o.fillEmitAsIs(&b.scratch, event, nil)
	if err == nil {
		err = dialect.ErrNoFastPath
		if b.app != nil {
			err = b.add(args)
		}
		if errors.Is(err, dialect.ErrNoFastPath) {
			if b.scratch.Args, err = decodeJSONArgs(args); err == nil {
				err = b.add(nil)
			}
		}
	}
	b.scratch = op.Emit{}
	if err != nil {
		return fmt.Errorf("emitter: batch emit %q to %s: %w", event, o.describe(), err)
	}
	return nil
}

// decodeJSONArgs decodes the JSON text of an argument list.
func decodeJSONArgs(args []byte) ([]any, error) {
	if !json.Valid(args) {
		return nil, errors.New("the arguments are not valid JSON")
	}
	v, err := op.Normalize(json.RawMessage(args))
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return x, nil
	}
	return nil, errors.New("the arguments must be a JSON array")
}

// add encodes b.scratch (with its arguments in argsJSON when not nil).
func (b *Batch) add(argsJSON []byte) error {
	if b.app != nil {
		start := len(b.buf)
		// the dialect writes the message in place: no copy of it
		b.msgs = append(b.msgs, queue.Message{})
		m := &b.msgs[len(b.msgs)-1]
		buf, err := b.app.AppendEmit(b.buf, m, &b.scratch, argsJSON)
		if err != nil {
			b.msgs = b.msgs[:len(b.msgs)-1]
			return err
		}
		b.buf = buf
		b.ends = append(b.ends, len(buf))
		b.bytes += len(m.Channel) + len(buf) - start
		b.n++
		return nil
	}
	msgs, err := b.e.d.Encode(&b.scratch)
	if err != nil {
		return err
	}
	b.msgs = append(b.msgs, msgs...)
	for _, m := range msgs {
		b.bytes += len(m.Channel) + len(m.Data)
	}
	b.n++
	return nil
}

// Len returns the number of emits in the batch.
func (b *Batch) Len() int { return b.n }

// Bytes returns the size of what the batch holds: the channel names and
// payloads of its encoded messages.
func (b *Batch) Bytes() int { return b.bytes }

// Publish publishes every emit of the batch, in order, and empties it.
// On error the batch is emptied as well: the broker may have taken part of
// it.
func (b *Batch) Publish(ctx context.Context) error {
	if len(b.msgs) == 0 {
		return nil
	}
	msgs, n := b.take()
	var err error
	if b.app != nil {
		err = b.e.sendOwned(ctx, msgs)
	} else {
		err = b.e.send(ctx, msgs)
	}
	b.reset(msgs)
	if err != nil {
		return fmt.Errorf("emitter: publish a batch of %d emits: %w", n, err)
	}
	return nil
}

// PublishAsync is Publish without waiting for the broker, on buses that
// can queue messages in order (queue.AsyncPublisher: adapter/redis): it
// queues the batch's emits after everything published before, empties
// the batch for the next emits at once, and returns a function that waits
// for the broker and returns what Publish would have (or ctx's error).
// Batches published one after another this way reach the broker in that
// order, several in flight at once: a producer keeps the connection busy
// while it encodes the next batch, and still bounds what is in flight by
// waiting for the oldest. On other buses it publishes before it returns,
// within ctx.
func (b *Batch) PublishAsync(ctx context.Context) (wait func(context.Context) error) {
	ap, ok := b.e.bus.(queue.AsyncPublisher)
	if !ok || len(b.msgs) == 0 {
		err := b.Publish(ctx)
		return func(context.Context) error { return err }
	}
	msgs, n := b.take()
	var (
		w   func(context.Context) error
		err = ErrClosed
	)
	if !b.e.isDone.Load() {
		w, err = ap.PublishAsync(msgs...)
	}
	// the bus keeps nothing of msgs once PublishAsync returned
	if b.app == nil {
		for _, m := range msgs {
			bufpool.Put(m.Data)
		}
	}
	b.reset(msgs)
	if err != nil {
		b.e.publishErrs.Add(1)
		err = fmt.Errorf("emitter: publish a batch of %d emits: %w", n, err)
		return func(context.Context) error { return err }
	}
	count := uint64(len(msgs))
	return func(ctx context.Context) error {
		if err := w(ctx); err != nil {
			b.e.publishErrs.Add(1)
			return fmt.Errorf("emitter: publish a batch of %d emits: %w", n, err)
		}
		b.e.published.Add(count)
		return nil
	}
}

// take empties the batch and returns its messages, their Data set.
func (b *Batch) take() (msgs []queue.Message, n int) {
	msgs, n = b.msgs, b.n
	b.n, b.bytes = 0, 0
	if b.app != nil {
		start := 0
		for i, end := range b.ends {
			msgs[i].Data = b.buf[start:end:end]
			start = end
		}
	}
	return msgs, n
}

// reset makes the batch's buffers ready for the next emits once msgs (what
// take returned) are published.
func (b *Batch) reset(msgs []queue.Message) {
	if b.app != nil {
		if cap(b.buf) <= maxKeptBatchBytes {
			b.buf = b.buf[:0]
		} else {
			b.buf = nil
		}
		b.ends = b.ends[:0]
		if cap(b.ends) > maxKeptBatchMsgs {
			b.ends = nil
		}
	}
	// The payload buffers went back to the pool (or, on error, to the
	// garbage collector) or are reused: drop every reference before
	// reusing the list.
	clear(msgs)
	if cap(msgs) <= maxKeptBatchMsgs {
		b.msgs = msgs[:0]
	} else {
		b.msgs = nil
	}
}
