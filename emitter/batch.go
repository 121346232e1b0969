package emitter

import (
	"context"
	"errors"
	"fmt"

	"github.com/siobridge/siobridge/queue"
)

// Batch collects emits and publishes them together: one Publish call, so
// that the bus writes them in one round trip. Use it when a worker emits
// many events at once (a notification fan-out, an import); plain Emit calls
// from many goroutines are coalesced too, but each waits for its own
// broker reply. A Batch is not safe for concurrent use.
type Batch struct {
	e    *Emitter
	msgs []queue.Message
	n    int
}

// NewBatch returns an empty batch.
func (e *Emitter) NewBatch() *Batch { return &Batch{e: e} }

// Emit encodes an emit of event to o's selection and adds it to the
// batch. Encoding errors (invalid event, unencodable argument, an emit the
// dialect's peers cannot perform) are returned now; nothing is published
// before Publish.
func (b *Batch) Emit(o *Operator, event string, args ...any) error {
	if o.e != b.e {
		return errors.New("emitter: batch: operator of another emitter")
	}
	m, err := o.emitOp(event, args)
	if err == nil {
		var msgs []queue.Message
		if msgs, err = b.e.d.Encode(m); err == nil {
			b.msgs = append(b.msgs, msgs...)
			b.n++
			return nil
		}
	}
	return fmt.Errorf("emitter: batch emit %q to %s: %w", event, o.describe(), err)
}

// Len returns the number of emits in the batch.
func (b *Batch) Len() int { return b.n }

// Publish publishes every emit of the batch, in order, and empties it.
// On error the batch is emptied as well: the broker may have taken part of
// it.
func (b *Batch) Publish(ctx context.Context) error {
	if len(b.msgs) == 0 {
		return nil
	}
	msgs, n := b.msgs, b.n
	b.msgs, b.n = nil, 0
	if err := b.e.send(ctx, msgs); err != nil {
		return fmt.Errorf("emitter: publish a batch of %d emits: %w", n, err)
	}
	return nil
}
