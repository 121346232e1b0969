//go:build race

package engineio

// raceEnabled: the race detector allows at most 8128 live goroutines.
const raceEnabled = true
