package servertest

import (
	"encoding/json"
	"errors"

	"github.com/siobridge/siobridge/server/parser"
)

// keepReply keeps the payload of a CONNECT reply (c.mu held).
func (c *Client) keepReply(p *parser.Packet) {
	if c.replies == nil {
		c.replies = map[string]json.RawMessage{}
	}
	c.replies[p.Namespace] = p.Data
}

// ConnectReply returns the payload of the last CONNECT reply received in
// namespace ns ({"sid": …}, with "pid" when the server has connection
// state recovery on), or nil.
func (c *Client) ConnectReply(ns string) json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replies[ns]
}

// PID returns the private session id of the last CONNECT reply in ns
// (server.WithConnectionStateRecovery), or "".
func (c *Client) PID(ns string) string {
	var v struct {
		PID string `json:"pid"`
	}
	json.Unmarshal(c.ConnectReply(ns), &v)
	return v.PID
}

// Drop cuts the connection at once, without a goodbye, as a lost network
// does: the server sees the transport close (a recoverable reason). Call
// Close afterwards all the same, to stop the test server of New.
func (c *Client) Drop() {
	c.wmu.Lock()
	c.wclosed = true
	c.wmu.Unlock()
	c.stop()
	c.conn.abort()
	<-c.done
}

// Redial connects a new client to the test server New started for c, as
// a client coming back does. Close it before c (c's Close stops the test
// server).
func (c *Client) Redial(o Options) (*Client, error) {
	if c.hs == nil {
		return nil, errors.New("servertest: Redial needs a client made by New (use Dial with the server's URL)")
	}
	return dial(c.hs.URL, o)
}

// LastOffset returns the offset that a socket.io client remembers from
// events: the last argument of the last event whose last argument is a
// string (socket.io-client's _lastOffset), or "".
func LastOffset(events []Received) string {
	for i := len(events) - 1; i >= 0; i-- {
		if a := events[i].Args; len(a) > 0 {
			if s, ok := a[len(a)-1].(string); ok {
				return s
			}
		}
	}
	return ""
}
