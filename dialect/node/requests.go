package node

import (
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// encodeExchange encodes the server-to-server requests and their answers
// (SOCKETS, ALL_ROOMS, REMOTE_FETCH and the answers to them and to
// SERVER_SIDE_EMIT); ok is false for other ops.
func (d *Dialect) encodeExchange(o op.Op) (msgs []queue.Message, ok bool, err error) {
	switch x := o.(type) {
	case *op.FetchSockets:
		ns := op.NamespaceOrRoot(x.Namespace)
		m := omap{{"uid", d.origin(x.Origin)}, {"requestId", x.RequestID}}
		if x.IDsOnly {
			m = append(m, kv{"type", reqSockets}, kv{"rooms", strList(x.Rooms)})
		} else {
			m = append(m, kv{"type", reqRemoteFetch}, kv{"opts", opts(x.Target)})
		}
		msgs, err = d.jsonMessage(d.requestChannel(ns), m)
	case *op.AllRooms:
		msgs, err = d.jsonMessage(d.requestChannel(op.NamespaceOrRoot(x.Namespace)),
			omap{{"uid", d.origin(x.Origin)}, {"requestId", x.RequestID}, {"type", reqAllRooms}})
	case *op.SocketsReply:
		list := make([]any, len(x.Sockets))
		for i, s := range x.Sockets {
			if x.IDsOnly {
				list[i] = s.ID
				continue
			}
			hs := s.Handshake
			if hs == nil {
				hs = map[string]any{}
			}
			data := s.Data
			if data == nil {
				data = map[string]any{}
			}
			list[i] = omap{{"id", s.ID}, {"handshake", hs}, {"rooms", strList(s.Rooms)}, {"data", data}}
		}
		msgs, err = d.jsonMessage(d.responseChannel(op.NamespaceOrRoot(x.Namespace)),
			omap{{"requestId", x.RequestID}, {"sockets", list}})
	case *op.RoomsReply:
		msgs, err = d.jsonMessage(d.responseChannel(op.NamespaceOrRoot(x.Namespace)),
			omap{{"requestId", x.RequestID}, {"rooms", strList(x.Rooms)}})
	case *op.ServerSideEmitReply:
		var data any // the adapter forwards the first acknowledgement argument
		if len(x.Args) > 0 {
			data = x.Args[0]
		}
		msgs, err = d.jsonMessage(d.responseChannel(op.NamespaceOrRoot(x.Namespace)),
			omap{{"type", reqServerSideEmit}, {"requestId", x.RequestID}, {"data", data}})
	default:
		return nil, false, nil
	}
	return msgs, true, err
}

// decodeExchangeRequest decodes SOCKETS, ALL_ROOMS and REMOTE_FETCH.
func decodeExchangeRequest(r map[string]any, typ int64, ns, uid string, target func() (op.Target, error)) (op.Op, error) {
	reqID, _ := r["requestId"].(string)
	if reqID == "" {
		return nil, malformed("request type %d without requestId", typ)
	}
	switch typ {
	case reqSockets:
		rooms, err := strs(r["rooms"])
		if err != nil {
			return nil, malformed("rooms: %v", err)
		}
		return &op.FetchSockets{Target: op.Target{Namespace: ns, Rooms: rooms}, RequestID: reqID, IDsOnly: true, Origin: uid}, nil
	case reqAllRooms:
		return &op.AllRooms{Namespace: ns, RequestID: reqID, Origin: uid}, nil
	}
	t, err := target()
	if err != nil {
		return nil, err
	}
	return &op.FetchSockets{Target: t, RequestID: reqID, Origin: uid}, nil
}

// decodeExchangeResponse decodes the answers to SOCKETS / REMOTE_FETCH
// ({requestId, sockets}), ALL_ROOMS ({requestId, rooms}) and
// SERVER_SIDE_EMIT ({type: 6, requestId, data}); ok is false for others.
func decodeExchangeResponse(r map[string]any, ns, reqID string) (o op.Op, ok bool, err error) {
	if t, _ := r["type"].(int64); t == reqServerSideEmit {
		if reqID == "" {
			return nil, true, malformed("server-side emit response without requestId")
		}
		return &op.ServerSideEmitReply{Namespace: ns, RequestID: reqID, Args: []any{r["data"]}}, true, nil
	}
	if _, has := r["type"]; has || reqID == "" {
		return nil, false, nil
	}
	if rooms, has := r["rooms"]; has {
		l, err := strs(rooms)
		if err != nil {
			return nil, true, malformed("rooms: %v", err)
		}
		return &op.RoomsReply{Namespace: ns, RequestID: reqID, Rooms: l}, true, nil
	}
	list, has := r["sockets"].([]any)
	if !has {
		return nil, false, nil
	}
	rep := &op.SocketsReply{Namespace: ns, RequestID: reqID, Sockets: make([]op.SocketInfo, 0, len(list))}
	for _, e := range list {
		switch s := e.(type) {
		case string:
			rep.IDsOnly = true
			rep.Sockets = append(rep.Sockets, op.SocketInfo{ID: s})
		case map[string]any:
			info, err := DecodeSocket(s)
			if err != nil {
				return nil, true, err
			}
			rep.Sockets = append(rep.Sockets, info)
		default:
			return nil, true, malformed("a %T in sockets", e)
		}
	}
	return rep, true, nil
}
