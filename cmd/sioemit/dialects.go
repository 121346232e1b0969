package main

import (
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/dialectname"
)

// newDialect maps --dialect, --channel and --sharded-mode to a dialect.
func newDialect(name, channel, shardedMode string) (dialect.Dialect, error) {
	d, err := dialectname.New(name, channel)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if shardedMode == "" {
		return d, nil
	}
	if d, err = dialectname.NewWithMode(name, channel, shardedMode); err != nil {
		return nil, usagef("--sharded-mode: %v", err)
	}
	return d, nil
}
