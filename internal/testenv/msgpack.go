package testenv

import "encoding/binary"

// NestedMsgpackHeaders returns about size bytes of nested msgpack array32
// (head 0xdd) or map32 (0xdf) headers, each announcing as many elements
// as the bytes left after it allow: the input that makes a decoder
// trusting announced lengths preallocate the rest of the input at every
// level.
func NestedMsgpackHeaders(size int, head byte) []byte {
	size -= size % 5
	b := make([]byte, 0, size)
	for len(b) < size {
		rest := uint32(size - len(b) - 5)
		if head == 0xdf {
			rest /= 2
		}
		b = binary.BigEndian.AppendUint32(append(b, head), rest)
	}
	return b
}
