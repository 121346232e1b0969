package queue

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "no-scheme-here"); err == nil || !strings.Contains(err.Error(), "no scheme") {
		t.Fatalf("Open without scheme: %v", err)
	}
	if _, err := Open(ctx, "bogus://x:pw@host"); err == nil || !strings.Contains(err.Error(), "unsupported broker URL scheme") {
		t.Fatalf("Open with unknown scheme: %v", err)
	}
	if _, err := Open(ctx, "://bad"); err == nil {
		t.Fatal("Open accepted an unparsable URL")
	}
}

func TestRegisterAndOpen(t *testing.T) {
	var got *url.URL
	Register("test-queue", func(ctx context.Context, u *url.URL) (Bus, error) {
		got = u
		return nil, nil
	})
	if _, err := Open(context.Background(), "TEST-QUEUE://h:1/x"); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Host != "h:1" {
		t.Fatalf("opener got %v", got)
	}
	found := false
	for _, s := range Schemes() {
		found = found || s == "test-queue"
	}
	if !found {
		t.Fatal("Schemes() does not list the registered scheme")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second Register for the same scheme did not panic")
		}
	}()
	Register("test-queue", nil)
}

func TestRedact(t *testing.T) {
	if r := Redact("amqp://guest:secret@h:5672/"); strings.Contains(r, "secret") {
		t.Fatalf("Redact kept the password: %s", r)
	}
}
