package parser_test

import (
	"fmt"

	"github.com/siobridge/siobridge/server/parser"
)

// A packet as the server builds it (JSON arguments, binary values as
// attachments) becomes one binary message under MsgPack, and decodes back
// to the same packet.
func ExampleMsgPack() {
	data, atts, _ := parser.EncodeData([]any{"chat", "hi", []byte{1, 2}})
	msgs, _ := parser.MsgPack.Encode(&parser.Packet{Type: parser.Event, Namespace: "/", ID: 7, HasID: true, Data: data, Attachments: atts})
	fmt.Printf("%d message, binary %v: %x\n", len(msgs), msgs[0].Binary, msgs[0].Data)
	p, _ := parser.MsgPack.NewDecoder().Add(msgs[0].Data, true)
	fmt.Printf("%s %v id %d\n", p.Data, p.Attachments, p.ID)
	// Output:
	// 1 message, binary true: 84a47479706502a46461746193a463686174a26869c4020102a36e7370a12fa2696407
	// ["chat","hi",{"_placeholder":true,"num":0}] [[1 2]] id 7
}
