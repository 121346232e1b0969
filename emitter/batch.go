package emitter

import (
	"context"
	"errors"
	"fmt"

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
// kilobytes). After Publish it keeps its message list (up to
// maxKeptBatchMsgs entries) for the next emits, so a Batch that is reused
// allocates less than a new one per round.
type Batch struct {
	e     *Emitter
	msgs  []queue.Message
	n     int
	bytes int
	// scratch is the op encoded by Emit: dialects do not keep the op they
	// encode, so one per batch saves an allocation per emit.
	scratch op.Emit
}

// maxKeptBatchMsgs bounds the message list a Batch keeps for reuse after
// Publish (4096 entries, 320 KiB): a batch once filled with a million
// emits gives its list back to the garbage collector.
const maxKeptBatchMsgs = 4096

// NewBatch returns an empty batch.
func (e *Emitter) NewBatch() *Batch { return &Batch{e: e} }

// Emit encodes an emit of event to o's selection and adds it to the
// batch. Encoding errors (invalid event, unencodable argument, an emit the
// dialect's peers cannot perform) are returned now, and leave the batch as
// it was; nothing is published before Publish.
func (b *Batch) Emit(o *Operator, event string, args ...any) error {
	if o.e != b.e {
		return errors.New("emitter: batch: operator of another emitter")
	}
	err := o.fillEmit(&b.scratch, event, args)
	if err == nil {
		var msgs []queue.Message
		msgs, err = b.e.d.Encode(&b.scratch)
		b.scratch = op.Emit{} // keep no reference to the caller's arguments
		if err == nil {
			b.msgs = append(b.msgs, msgs...)
			for _, m := range msgs {
				b.bytes += len(m.Channel) + len(m.Data)
			}
			b.n++
			return nil
		}
	}
	return fmt.Errorf("emitter: batch emit %q to %s: %w", event, o.describe(), err)
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
	msgs, n := b.msgs, b.n
	b.n, b.bytes = 0, 0
	err := b.e.send(ctx, msgs)
	// The payload buffers went back to the pool (or, on error, to the
	// garbage collector): drop every reference before reusing the list.
	clear(msgs)
	if cap(msgs) <= maxKeptBatchMsgs {
		b.msgs = msgs[:0]
	} else {
		b.msgs = nil
	}
	if err != nil {
		return fmt.Errorf("emitter: publish a batch of %d emits: %w", n, err)
	}
	return nil
}
