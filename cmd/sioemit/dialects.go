package main

import (
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/dialectname"
)

// newDialect maps --dialect and --channel to a dialect.
func newDialect(name, channel string) (dialect.Dialect, error) {
	d, err := dialectname.New(name, channel)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return d, nil
}
