package admin

import (
	"strings"
	"testing"

	"github.com/siobridge/siobridge/server"
)

// The queue of notifications holds at most max bytes (each note counting
// noteOverhead plus its event): past it, notes are dropped and counted,
// never waited for; taking them frees the room.
func TestNoteQueueBounded(t *testing.T) {
	q := noteQueue{max: 3 * (noteOverhead + 1000), wake: make(chan struct{}, 1)}
	ev := server.EventData{Name: "e", Data: []byte(`["e","` + strings.Repeat("x", 1000-8) + `"]`)}
	for range 5 {
		q.push(note{kind: noteReceived, ev: ev})
	}
	if got := len(q.take()); got != 3 {
		t.Errorf("%d notes queued with room for 3", got)
	}
	if d := q.dropped.Load(); d != 2 {
		t.Errorf("%d dropped, want 2", d)
	}
	q.push(note{kind: noteJoined})
	if got := len(q.take()); got != 1 {
		t.Errorf("after take, %d notes queued, want 1", got)
	}
	if len(q.wake) != 1 {
		t.Error("pushing does not wake the goroutine")
	}
}
