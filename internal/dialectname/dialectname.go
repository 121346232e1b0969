// Package dialectname maps the dialect names of the commands' flags
// (python, python-pickle, node) to dialects.
package dialectname

import (
	"fmt"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
)

// New returns the dialect called name on channel (the python channel or
// the node key prefix; "" = the dialect's default).
func New(name, channel string) (dialect.Dialect, error) {
	switch name {
	case "python":
		return python.New(python.Options{Channel: channel}), nil
	case "python-pickle":
		return python.NewPickle(python.Options{Channel: channel}), nil
	case "node":
		return node.New(node.Options{Key: channel}), nil
	}
	return nil, fmt.Errorf("unknown dialect %q (want python, python-pickle or node)", name)
}
