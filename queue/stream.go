package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The Data of a Stream message is the entry's field/value pairs, each
// written as
//
//	uvarint(len(field)) field uvarint(len(value)) value
//
// (encoding/binary's unsigned varint), in the entry's order.
// AppendStreamField writes one pair, StreamFields reads them back.

// AppendStreamField appends the pair field, value to b, the Data of a
// Stream message.
func AppendStreamField(b []byte, field, value string) []byte {
	b = binary.AppendUvarint(b, uint64(len(field)))
	b = append(b, field...)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

// ErrStreamFields is wrapped by StreamFields's error for Data that is not
// a list of field/value pairs.
var ErrStreamFields = errors.New("queue: malformed stream entry fields")

// StreamFields calls f with each field/value pair of data (the Data of a
// Stream message), in order; f's slices alias data. It stops at the first
// pair f returns false for. Data that is not such pairs gives an error
// wrapping ErrStreamFields (f may have been called for the pairs before).
func StreamFields(data []byte, f func(field, value []byte) bool) error {
	for len(data) > 0 {
		field, rest, err := streamPart(data)
		if err != nil {
			return fmt.Errorf("field: %w", err)
		}
		value, rest, err := streamPart(rest)
		if err != nil {
			return fmt.Errorf("value of %q: %w", field, err)
		}
		data = rest
		if !f(field, value) {
			return nil
		}
	}
	return nil
}

// streamPart reads one length-prefixed part.
func streamPart(b []byte) (part, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, ErrStreamFields
	}
	end := k + int(n)
	return b[k:end:end], b[end:], nil
}

// StreamFieldCount returns how many field/value pairs data holds, or an
// error wrapping ErrStreamFields.
func StreamFieldCount(data []byte) (int, error) {
	n := 0
	err := StreamFields(data, func(_, _ []byte) bool { n++; return true })
	return n, err
}

// NoStreams returns an error wrapping ErrStreamsUnsupported when a
// message of msgs is a Stream message, nil otherwise: the check of
// Publish on buses without streams.
func NoStreams(msgs []Message) error {
	for _, m := range msgs {
		if m.Stream {
			return fmt.Errorf("append to stream %q: %w", m.Channel, ErrStreamsUnsupported)
		}
	}
	return nil
}

// NoStreamSubscription returns an error wrapping ErrStreamsUnsupported
// when sub reads streams, nil otherwise: the check of Subscribe on buses
// without streams.
func NoStreamSubscription(sub Subscription) error {
	if len(sub.Streams) > 0 {
		return fmt.Errorf("read streams %q: %w", sub.Streams, ErrStreamsUnsupported)
	}
	return nil
}
