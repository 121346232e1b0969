package brokerflags

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
)

// OpenLogged gives the bus the logger: a broker that goes away is logged.
// Bad URLs fail as with Open.
func TestOpenLogged(t *testing.T) {
	redis := testenv.StartRedis(t)
	var log testenv.LogBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	bus, err := OpenLogged(ctx, "redis://"+redis.Addr+"/0", log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	redis.Stop()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), "redis: lost the broker"); {
		if time.Now().After(deadline) {
			t.Fatalf("no outage logged: %q", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, u := range []string{"::", "ftp://x", "redis://127.0.0.1:1/0"} {
		if b, err := OpenLogged(ctx, u, log.Logger()); err == nil || b != nil {
			t.Errorf("%q: %v, %v; want an error and no bus", u, b, err)
		}
	}
}
