package main

import (
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
)

// newDialect maps --dialect and --channel to a dialect.
func newDialect(name, channel string) (dialect.Dialect, error) {
	switch name {
	case "python":
		return python.New(python.Options{Channel: channel}), nil
	case "python-pickle":
		return python.NewPickle(python.Options{Channel: channel}), nil
	case "node":
		return node.New(node.Options{Key: channel}), nil
	}
	return nil, usagef("unknown dialect %q (want python, python-pickle or node)", name)
}
