package main

import (
	"fmt"
	"slices"

	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/jwtauth"
)

// Bounds of what one client may ask with --allow-client-rooms: a client's
// rooms cost the server memory, so their number and names are bounded
// (at most MaxClientRooms*MaxRoomBytes bytes of names per socket).
const (
	// MaxClientRooms is how many rooms one socket may have joined at
	// once, its own id not counted.
	MaxClientRooms = 32
	// MaxRoomBytes bounds the name of a room a client joins or publishes to.
	MaxRoomBytes = 128
)

// clientOps are the events clients may send to change their rooms (join,
// leave) and to publish to a room (publish), as the flags allow. Refusals
// are acknowledged with {"error": "..."}. With auth (--auth-secret,
// --auth-jwks), the allow patterns of a client's token decide join and
// publish instead of the flags, and publishing needs no membership.
type clientOps struct{ rooms, publish, auth bool }

func refuse(format string, a ...any) any {
	return map[string]any{"error": fmt.Sprintf(format, a...)}
}

// register installs the handlers of join, leave and publish in n.
func (c clientOps) register(n *server.Namespace) {
	n.On("join", func(s *server.Socket, args ...any) any {
		room, refusal := c.roomArg("join", args)
		if refusal != nil {
			return refusal
		}
		if c.auth && !jwtauth.Allowed(s, room) {
			return refuse("join: the token does not allow room %q", room)
		}
		if rooms := s.Rooms(); !slices.Contains(rooms, room) && len(rooms)-1 >= MaxClientRooms {
			return refuse("join: a client may be in %d rooms at most", MaxClientRooms)
		}
		s.Join(room)
		return true
	})
	n.On("leave", func(s *server.Socket, args ...any) any {
		room, refusal := c.roomArg("leave", args)
		if refusal != nil {
			return refusal
		}
		s.Leave(room)
		return true
	})
	n.On("publish", func(s *server.Socket, args ...any) any {
		if !c.publish && !c.auth {
			return refuse("publish: publishing is not allowed on this server (--allow-client-publish)")
		}
		if len(args) < 2 {
			return refuse("publish needs a room, an event name and the event's arguments")
		}
		room, ok := args[0].(string)
		if !ok {
			return refuse("publish: the room must be a string")
		}
		event, ok := args[1].(string)
		if !ok {
			return refuse("publish: the event name must be a string")
		}
		if err := op.ValidateEvent(event); err != nil {
			return refuse("publish: %v", err)
		}
		switch {
		case c.auth && !jwtauth.Allowed(s, room):
			return refuse("publish: the token does not allow room %q", room)
		case !c.auth && !slices.Contains(s.Rooms(), room):
			return refuse("publish: not a member of room %q", room)
		case len(room) > MaxRoomBytes:
			return refuse("publish: room names are %d bytes at most", MaxRoomBytes)
		}
		if err := n.To(room).Emit(event, args[2:]...); err != nil {
			return refuse("publish: %v", err)
		}
		return true
	})
}

// roomArg checks the room argument of join and leave.
func (c clientOps) roomArg(event string, args []any) (string, any) {
	if !c.rooms && !c.auth {
		return "", refuse("%s: clients may not change their rooms on this server (--allow-client-rooms)", event)
	}
	if len(args) == 0 {
		return "", refuse("%s needs a room name", event)
	}
	room, ok := args[0].(string)
	switch {
	case !ok || room == "":
		return "", refuse("%s: the room name must be a non-empty string", event)
	case len(room) > MaxRoomBytes:
		return "", refuse("%s: room names are %d bytes at most", event, MaxRoomBytes)
	case looksLikeSocketID(room):
		// a socket's own room: joining it would receive that socket's
		// private events, leaving it would stop one's own
		return "", refuse("%s: %q is shaped like a socket id (20 URL-safe base64 characters); such rooms are reserved", event, room)
	}
	return room, nil
}

// looksLikeSocketID reports whether room has the shape of a socket id of
// this server, socket.io (Node) or python-socketio: 20 characters of the
// URL-safe base64 alphabet.
func looksLikeSocketID(room string) bool {
	if len(room) != 20 {
		return false
	}
	for i := 0; i < len(room); i++ {
		c := room[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
