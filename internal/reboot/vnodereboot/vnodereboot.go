// Package vnodereboot is the reboot engine's hard-reboot method for
// virtual nodes, beside poereboot's for physical ones: kill the node's
// running machine and start the next one at once.
package vnodereboot

import (
	"context"
	"errors"
	"fmt"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/vnode"
)

// Supervisor is what the method needs of the vnode supervisor.
type Supervisor interface {
	HardReboot(ctx context.Context, name string) error
}

// Method hard-reboots virtual nodes through a supervisor.
type Method struct{ sup Supervisor }

var _ reboot.HardRebooter = Method{}

// New returns the method over sup.
func New(sup Supervisor) Method { return Method{sup: sup} }

// Method implements reboot.HardRebooter.
func (Method) Method() string { return api.MethodVnodeHard }

// HardReboot implements reboot.HardRebooter.
func (m Method) HardReboot(ctx context.Context, n reboot.Node) error {
	err := m.sup.HardReboot(ctx, n.Name)
	if errors.Is(err, vnode.ErrNotFound) {
		return fmt.Errorf("%s is not a virtual node of this server (not created by walt node create)", n.Name)
	}
	return err
}
