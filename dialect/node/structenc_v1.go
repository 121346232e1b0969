//go:build !goexperiment.jsonv2

package node

// structFastPath: the struct path reproduces this encoding/json (v1's own
// encoder).
const structFastPath = true
