package op

// Server-to-server requests and their answers (node: SOCKETS, ALL_ROOMS,
// REMOTE_FETCH, SERVER_SIDE_EMIT with acknowledgement). Python peers have
// no request/response protocol.

// FetchSockets asks every server for its sockets selected by Target (node
// REMOTE_FETCH; with IDsOnly, the older SOCKETS request, answered with
// socket ids only).
type FetchSockets struct {
	Target
	RequestID string
	IDsOnly   bool
	Origin    string
}

// AllRooms asks every server for the rooms of a namespace.
type AllRooms struct {
	Namespace string
	RequestID string
	Origin    string
}

// SocketInfo describes one socket in a SocketsReply.
type SocketInfo struct {
	ID    string
	Rooms []string
	// Data is the socket's application data (socket.data), plain data.
	Data any
	// Handshake is what the socket connected with (socket.handshake:
	// headers, address, url, query, auth, ...), plain data.
	Handshake map[string]any
}

// SocketsReply answers a FetchSockets with one server's sockets.
type SocketsReply struct {
	Namespace string
	RequestID string
	// IDsOnly answers the SOCKETS form: only Sockets[i].ID is sent.
	IDsOnly bool
	Sockets []SocketInfo
	Origin  string
	// Host is the requester the answer is addressed to (node-sharded
	// response channels); empty when the dialect addresses it by ID only.
	Host string
}

// RoomsReply answers an AllRooms with one server's rooms.
type RoomsReply struct {
	Namespace string
	RequestID string
	Rooms     []string
	Origin    string
}

// ServerSideEmitReply answers a ServerSideEmit that has a RequestID: the
// acknowledgement arguments of one server's handler.
type ServerSideEmitReply struct {
	Namespace string
	RequestID string
	Args      []any
	Origin    string
	// Host is the requester the answer is addressed to (node-sharded
	// response channels); empty when the dialect addresses it by ID only.
	Host string
}

func (*FetchSockets) Kind() string        { return "fetch-sockets" }
func (*AllRooms) Kind() string            { return "all-rooms" }
func (*SocketsReply) Kind() string        { return "sockets-reply" }
func (*RoomsReply) Kind() string          { return "rooms-reply" }
func (*ServerSideEmitReply) Kind() string { return "server-side-emit-reply" }
