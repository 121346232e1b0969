package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// Dynamic namespaces are removed when their last socket leaves, or when
// the only client that asked for one was refused: clients cannot fill the
// server with namespaces (they used to stay forever).
func TestDynamicNamespacesRemovedWhenEmpty(t *testing.T) {
	srv := newServer(t)
	var setups atomic.Int32
	srv.OfPattern(regexp.MustCompile(`^/dyn-\d+$`), func(n *server.Namespace) {
		setups.Add(1)
		n.On("echo", func(s *server.Socket, v string) string { return n.Name() + ":" + v })
		n.Use(func(s *server.Socket, auth json.RawMessage) error {
			if string(auth) == `{"deny":true}` {
				return errors.New("refused")
			}
			return nil
		})
	})
	srv.Of("/static")
	want := []string{"/", "/static"}
	c := client(t, srv, "", servertest.Options{})
	for i := range 40 {
		ns := fmt.Sprintf("/dyn-%d", i)
		if err := c.Connect(ns, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := c.EmitWithAck(ns, 5*time.Second, "echo", "x"); err != nil || got[0] != ns+":x" {
			t.Fatalf("%s: %v %v", ns, got, err)
		}
		if err := c.Connect(fmt.Sprintf("/dyn-%d", 1000+i), map[string]bool{"deny": true}); err == nil {
			t.Fatal("the middleware did not refuse")
		}
	}
	if n := len(server.NamespaceNames(srv)); n != 2+40 {
		t.Errorf("%d namespaces with 40 dynamic ones joined, want 42", n)
	}
	for i := range 40 {
		if err := c.Disconnect(fmt.Sprintf("/dyn-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// the server handles the DISCONNECTs in order: once it answers on
	// another namespace, they are done
	if err := c.Connect("/static", nil); err != nil {
		t.Fatal(err)
	}
	if got := server.NamespaceNames(srv); !reflect.DeepEqual(got, want) {
		t.Errorf("namespaces after every client left: %v, want %v", got, want)
	}
	// joined again: set up again
	before := setups.Load()
	if err := c.Connect("/dyn-7", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.EmitWithAck("/dyn-7", 5*time.Second, "echo", "y"); err != nil || got[0] != "/dyn-7:y" {
		t.Fatalf("rejoined: %v %v", got, err)
	}
	if setups.Load() != before+1 {
		t.Errorf("setup ran %d times for the rejoined namespace", setups.Load()-before)
	}
}

// One client joins at most DefaultMaxNamespaces namespaces at once; past
// that, CONNECT is refused (a client could join any number before, each
// socket costing the server far more than the few bytes of its CONNECT,
// and every packet scanning them all).
func TestNamespacesPerClientBound(t *testing.T) {
	srv := newServer(t)
	srv.OfPattern(regexp.MustCompile(`^/n\d+$`), nil)
	c := client(t, srv, "", servertest.Options{})
	for i := range server.DefaultMaxNamespaces {
		if err := c.Connect(fmt.Sprintf("/n%d", i), nil); err != nil {
			t.Fatalf("namespace %d: %v", i, err)
		}
	}
	err := c.Connect("/n1000", nil)
	var ce *servertest.ConnectError
	if !errors.As(err, &ce) || ce.Message != "Too many namespaces" {
		t.Fatalf("namespace %d: %v, want a refusal", server.DefaultMaxNamespaces+1, err)
	}
	if n := len(server.NamespaceNames(srv)); n != 1+server.DefaultMaxNamespaces {
		t.Errorf("%d namespaces, want %d", n, 1+server.DefaultMaxNamespaces)
	}
	// leaving one makes room again
	if err := c.Disconnect("/n0"); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect("/n5000", nil); err != nil {
		t.Fatal(err)
	}
}
