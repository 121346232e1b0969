package testenv

import (
	"os"
	"testing"
	"time"
)

// ReplaceFile replaces path with data the way a careful deployer does,
// written aside then renamed over it, so that a reader watching path never
// sees it half written; its modification time is set to mod, so that
// each replacement is seen as a change whatever the file system's time
// resolution.
func ReplaceFile(t testing.TB, path string, data []byte, mod time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
