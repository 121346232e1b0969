package server

import (
	"encoding/json"
	"testing"

	"github.com/siobridge/siobridge/server/engineio"
)

// BenchmarkHookReports measures what the reports of one broadcast
// recipient (eventSent and packetOut) cost without hooks, and with one
// Hooks whose functions count.
func BenchmarkHookReports(b *testing.B) {
	s := &Socket{id: "x"}
	data := json.RawMessage(`["news",1]`)
	msgs := []engineio.Message{{Data: []byte(`42["news",1]`)}}
	run := func(b *testing.B, hs *hookSet) {
		for b.Loop() {
			hs.eventSent(s, "news", data, nil)
			hs.packetOut(msgs)
		}
	}
	b.Run("none", func(b *testing.B) { run(b, &hookSet{}) })
	b.Run("counting", func(b *testing.B) {
		var hs hookSet
		n := 0
		hs.update(func([]*Hooks) []*Hooks {
			return []*Hooks{{EventSent: func(*Socket, EventData) { n++ }, PacketOut: func(int) { n++ }}}
		})
		run(b, &hs)
	})
}
