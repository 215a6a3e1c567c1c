package client_test

import (
	"errors"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// Client tests use 127.44.0.0/16 for agents.
var addrs = reboottest.NewAddrs(44)

// Names travel as one escaped path segment; names that cannot be one are
// refused before any request.
func TestNamesInPaths(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, addrs, nil)
	for _, name := range []string{"a/b", "a?b", "a#b", "a%2Fb", "a b", "../devices"} {
		err := e.Client.ForgetDevice(t.Context(), name, "alice", false)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeNotFound || ae.Message != "No device with name '"+name+"' found." {
			t.Errorf("ForgetDevice(%q) = %v, want not found naming it whole", name, err)
		}
	}
	dead, err := client.New("http://127.44.255.254:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", ".."} {
		if err := dead.ForgetDevice(t.Context(), name, "alice", false); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("ForgetDevice(%q) = %v, want ErrInvalid without a request", name, err)
		}
		if _, err := dead.RemoveVNode(t.Context(), name, "alice", false); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("RemoveVNode(%q) = %v, want ErrInvalid without a request", name, err)
		}
		if _, err := dead.SwitchPorts(t.Context(), name); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("SwitchPorts(%q) = %v, want ErrInvalid without a request", name, err)
		}
	}
}
