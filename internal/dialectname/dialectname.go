// Package dialectname maps the dialect names of the commands' flags
// (python, python-pickle, node, node-sharded, node-streams) to dialects.
package dialectname

import (
	"fmt"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/nodesharded"
	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/dialect/python"
)

// ShardedModes lists the subscription modes of node-sharded, for help
// texts.
const ShardedModes = "static | dynamic | dynamic-private"

// New returns the dialect called name on channel (the python channel or
// the node key prefix; "" = the dialect's default). node-sharded uses the
// sharded adapter's default subscription mode, dynamic. node-streams takes
// channel as both the Pub/Sub channel prefix and the stream's name (Node:
// createAdapter(client, {channelPrefix: NAME, streamName: NAME}); both
// default to "socket.io"), so that clusters of different channels share a
// Redis without seeing each other, and trims the stream with the
// adapter's MAXLEN ~ 10000.
func New(name, channel string) (dialect.Dialect, error) { return NewWithMode(name, channel, "") }

// NewWithMode is New with node-sharded's subscription mode (the
// subscriptionMode of createShardedAdapter: static, dynamic or
// dynamic-private; "" = dynamic). It must be the mode of the cluster's
// servers. A mode with another dialect is an error: only node-sharded
// has one.
func NewWithMode(name, channel, mode string) (dialect.Dialect, error) {
	if mode != "" && name != "node-sharded" {
		return nil, fmt.Errorf("a subscription mode (%s) is for the node-sharded dialect only, not %s", mode, name)
	}
	switch name {
	case "python":
		return python.New(python.Options{Channel: channel}), nil
	case "python-pickle":
		return python.NewPickle(python.Options{Channel: channel}), nil
	case "node":
		return node.New(node.Options{Key: channel}), nil
	case "node-sharded":
		d, err := nodesharded.New(nodesharded.Options{Key: channel, Mode: nodesharded.Mode(mode)})
		if err != nil {
			return nil, err
		}
		return d, nil
	case "node-streams":
		d, err := nodestreams.New(nodestreams.Options{Key: channel, StreamName: channel})
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown dialect %q (want python, python-pickle, node, node-sharded or node-streams)", name)
}

// ServerCapable reports whether a server node can speak the dialect
// called name, beyond emitting to one: all of them (a node-sharded server
// subscribes to the channel of each room it holds, a node-streams server
// reads the stream).
func ServerCapable(name string) bool {
	switch name {
	case "python", "python-pickle", "node", "node-sharded", "node-streams":
		return true
	}
	return false
}

// RelaySource reports whether a relay (siobridge) can read the dialect
// called name: not node-sharded, whose room broadcasts travel on a channel
// per room that a relay, holding no rooms, does not know to subscribe to,
// nor node-streams, whose broadcasts and room operations are stream
// entries (a relay reads channels only).
func RelaySource(name string) bool {
	return ServerCapable(name) && name != "node-sharded" && name != "node-streams"
}
