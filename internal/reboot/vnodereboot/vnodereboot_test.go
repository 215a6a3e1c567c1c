package vnodereboot_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/vnodereboot"
	"github.com/walt-testbed/walt/internal/vnode"
)

// sup answers HardReboot with err, recording the names asked.
type sup struct {
	err   error
	names []string
}

func (s *sup) HardReboot(_ context.Context, name string) error {
	s.names = append(s.names, name)
	return s.err
}

func TestHardReboot(t *testing.T) {
	t.Parallel()
	ok := &sup{}
	m := vnodereboot.New(ok)
	if m.Method() != api.MethodVnodeHard {
		t.Errorf("Method() = %q, want %q", m.Method(), api.MethodVnodeHard)
	}
	if err := m.HardReboot(t.Context(), reboot.Node{Name: "vn1"}); err != nil || len(ok.names) != 1 || ok.names[0] != "vn1" {
		t.Errorf("HardReboot(vn1) = %v, supervisor asked %v; want nil, [vn1]", err, ok.names)
	}
	err := vnodereboot.New(&sup{err: vnode.ErrNotFound}).HardReboot(t.Context(), reboot.Node{Name: "rpi1"})
	if err == nil || !strings.Contains(err.Error(), "rpi1 is not a virtual node of this server") {
		t.Errorf("HardReboot(unknown) = %v, want an error naming rpi1 as not a virtual node of this server", err)
	}
	boom := errors.New("boom")
	if err := vnodereboot.New(&sup{err: boom}).HardReboot(t.Context(), reboot.Node{Name: "vn2"}); !errors.Is(err, boom) {
		t.Errorf("HardReboot(failing) = %v, want the supervisor's error", err)
	}
}
