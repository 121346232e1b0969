//go:build goexperiment.jsonv2

package node

// structFastPath: under GOEXPERIMENT=jsonv2, encoding/json is written on
// top of encoding/json/v2, which the struct path was not checked against:
// struct arguments take the slow path.
const structFastPath = false
