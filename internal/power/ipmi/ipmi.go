// Package ipmi power-cycles machines through their BMC over IPMI's LAN
// protocol (IPMI 2.0, RMCP+), with github.com/bougou/go-ipmi: Chassis
// Control power down, the state read back off (Get Chassis Status), the
// node's off time, power up, the state read back on. One session at a
// time per BMC; different BMCs at once.
package ipmi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/walt-testbed/walt/internal/power"
)

// DefaultPort is IPMI's RMCP port.
const DefaultPort = 623

// Target is one node's BMC.
type Target struct {
	// Node names the node in messages.
	Node     string
	Host     string
	Port     int
	User     string
	Password power.Secret
	// OffTime is the least time the power stays off (power.off_time).
	OffTime time.Duration
}

// BMC names the BMC in messages: host:port.
func (t Target) BMC() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// Config configures a Driver.
type Config struct {
	// Timeout bounds one IPMI request; Retries is how many times a request
	// without a reply is sent again.
	Timeout time.Duration
	Retries int
	// Poll and Settle: see power.Cycling.
	Poll, Settle time.Duration
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{Timeout: 2 * time.Second, Retries: 2, Poll: 250 * time.Millisecond, Settle: 15 * time.Second}
}

// Driver talks to BMCs. It is safe for concurrent use.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	serial power.Serial
}

// New returns a driver; log gets one line per power-cycle.
func New(cfg Config, log *slog.Logger) (*Driver, error) {
	if cfg.Timeout <= 0 || cfg.Poll <= 0 || cfg.Settle <= 0 || cfg.Retries < 0 {
		return nil, fmt.Errorf("ipmi driver: timeout, poll and settle must be > 0, retries >= 0 (got %+v)", cfg)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, log: log}, nil
}

// Cycle power-cycles t's machine and says whether the cut was read back.
func (d *Driver) Cycle(ctx context.Context, t Target) (power.Cut, error) {
	var cut power.Cut
	err := d.session(ctx, t, func(c chassisClient) error {
		var err error
		cut, err = power.CycleChassis(ctx, c, "BMC "+t.BMC(), d.cycling(t))
		return err
	})
	d.log.Info("IPMI power-cycle", "node", t.Node, "bmc", t.BMC(), "verified", cut.Verified, "err", err)
	return cut, err
}

// PowerOn switches t's machine on.
func (d *Driver) PowerOn(ctx context.Context, t Target) error {
	return d.session(ctx, t, func(c chassisClient) error {
		return power.PowerOnChassis(ctx, c, "BMC "+t.BMC(), d.cycling(t))
	})
}

func (d *Driver) cycling(t Target) power.Cycling {
	return power.Cycling{OffTime: t.OffTime, Poll: d.cfg.Poll, Settle: d.cfg.Settle}
}

// session opens an RMCP+ session with t's BMC, alone among this driver's
// calls for that BMC, runs f, and closes it.
func (d *Driver) session(ctx context.Context, t Target, f func(chassisClient) error) error {
	return d.serial.Do(ctx, t.BMC(), func() (err error) {
		defer func() {
			if r := recover(); r != nil { // a library bug on a strange reply must not end the server
				err = fmt.Errorf("BMC %s: IPMI library failure on its reply: %v", t.BMC(), r)
			}
		}()
		c, err := client.NewClient(t.Host, t.Port, t.User, t.Password.Reveal())
		if err != nil {
			return fmt.Errorf("BMC %s: %s", t.BMC(), scrub(err, t.Password))
		}
		// The suites to try are given, in the library's order of
		// preference (17, then 3...): left to find them, the library first
		// asks the BMC for its list (Get Channel Cipher Suites), which
		// keeps only those of that same list, and which some BMCs
		// (ipmi_sim) never answer: Timeout times 1+Retries lost on each
		// session (6 s by default). A suite the BMC lacks is refused by
		// its Open Session reply, at once.
		c.WithTimeout(d.cfg.Timeout).WithRetry(d.cfg.Retries).WithCipherSuiteID(types.PreferredCiphers...)
		if err := c.Connect(ctx); err != nil {
			return fmt.Errorf("BMC %s: open session as %q: %w", t.BMC(), t.User, classify(err, t.Password))
		}
		defer func() { _ = c.Close(context.WithoutCancel(ctx)) }()
		return f(chassisClient{c: c, pw: t.Password})
	})
}

// chassisClient is a power.Chassis over an open session.
type chassisClient struct {
	c  *client.Client
	pw power.Secret
}

func (c chassisClient) SetPower(ctx context.Context, on bool) error {
	ctl := chassis.ChassisControlPowerDown
	if on {
		ctl = chassis.ChassisControlPowerUp
	}
	if _, err := c.c.ChassisControl(ctx, ctl); err != nil {
		return classify(err, c.pw)
	}
	return nil
}

func (c chassisClient) IsOn(ctx context.Context) (bool, error) {
	st, err := c.c.GetChassisStatus(ctx)
	if err != nil {
		return false, classify(err, c.pw)
	}
	if st == nil {
		return false, errors.New("empty chassis status")
	}
	return st.PowerIsOn, nil
}

// maxErr bounds the library's text in an error: its messages list every
// cipher suite tried.
const maxErr = 300

// classify wraps the library's error with the power error it means, its
// text bounded and without the password.
func classify(err error, pw power.Secret) error {
	msg, full := scrub(err, pw), strings.ToLower(err.Error())
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", msg, err)
	case strings.Contains(full, "rakp") || strings.Contains(full, "unauthorized") || strings.Contains(full, "privilege"):
		return fmt.Errorf("%w (wrong ipmi.user or ipmi.password?): %s", power.ErrDenied, msg)
	case strings.Contains(full, "timeout") || strings.Contains(full, "connection refused"):
		return fmt.Errorf("%w: %s", power.ErrUnreachable, msg)
	}
	return errors.New(msg)
}

// scrub returns err's text, bounded, with any copy of the password
// replaced.
func scrub(err error, pw power.Secret) string {
	msg := err.Error()
	if p := pw.Reveal(); p != "" {
		msg = strings.ReplaceAll(msg, p, power.Redacted)
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > maxErr {
		msg = msg[:maxErr] + "..."
	}
	return msg
}
