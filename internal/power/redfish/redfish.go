// Package redfish power-cycles machines through their BMC's Redfish
// service, with github.com/stmcginnis/gofish: the ComputerSystem's Reset
// action (ForceOff), its PowerState read back Off, the node's off time,
// Reset On, PowerState read back On. HTTP basic authentication on every
// request (no session is left behind on the BMC); one request at a time
// per BMC, different BMCs at once.
package redfish

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/common"
	rf "github.com/stmcginnis/gofish/redfish"

	"github.com/walt-testbed/walt/internal/power"
)

// Target is one node's BMC.
type Target struct {
	// Node names the node in messages.
	Node string
	// URL is the service (https://bmc) or one of its systems
	// (https://bmc/redfish/v1/Systems/1): see ParseURL.
	URL      *url.URL
	User     string
	Password power.Secret
	// OffTime is the least time the power stays off (power.off_time).
	OffTime time.Duration
	// Insecure skips the check of the BMC's TLS certificate
	// (redfish.insecure: self-signed certificates).
	Insecure bool
}

// BMC names the BMC in messages: its URL, without credentials.
func (t Target) BMC() string {
	if t.URL == nil {
		return "<no URL>"
	}
	return t.URL.Redacted()
}

// systemsPath is where Redfish services list their ComputerSystems.
const systemsPath = "/redfish/v1/Systems/"

// Bounds of redfish.url.
const maxURL = 512

// ParseURL checks a redfish.url value: http or https, a host, no user
// information (credentials go in redfish.user and redfish.password), no
// query or fragment, and a path that is empty, /, /redfish/v1, or names
// one system under /redfish/v1/Systems/. It takes printable ASCII only,
// and a host that is an IP address or a DNS name, so that what it
// accepts reads back the same from its String.
func ParseURL(v string) (*url.URL, error) {
	if v == "" || len(v) > maxURL {
		return nil, fmt.Errorf("redfish.url: must have 1 to %d characters", maxURL)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return nil, fmt.Errorf("redfish.url: only printable ASCII allowed, no spaces (byte %d is %#x)", i, v[i])
		}
	}
	u, err := url.Parse(v)
	if err != nil {
		return nil, fmt.Errorf("redfish.url: not a URL (expected for example https://10.0.0.5 or https://bmc1/redfish/v1/Systems/1)")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("redfish.url: scheme must be http or https (got %q)", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("redfish.url: no host")
	case u.User != nil:
		return nil, fmt.Errorf("redfish.url: must not hold credentials (use redfish.user and redfish.password)")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Opaque != "":
		return nil, fmt.Errorf("redfish.url: no query or fragment allowed")
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil || strings.TrimLeft(p, "0123456789") != "" {
			return nil, fmt.Errorf("redfish.url: port %q is not a TCP port number", p)
		}
	}
	p := strings.TrimSuffix(u.Path, "/")
	if p != "" && p != "/redfish/v1" {
		id, ok := strings.CutPrefix(p+"/", systemsPath)
		if !ok || id == "" || strings.Count(id, "/") != 1 {
			return nil, fmt.Errorf("redfish.url: path must be empty or name one system, /redfish/v1/Systems/<id> (got %.24q)", u.Path)
		}
	}
	if h := u.Hostname(); net.ParseIP(h) == nil && strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" {
		return nil, fmt.Errorf("redfish.url: host %.64q is neither an IP address nor a DNS name", h)
	}
	return u, nil
}

// Config configures a Driver.
type Config struct {
	// Timeout bounds one HTTP request.
	Timeout time.Duration
	// Poll and Settle: see power.Cycling.
	Poll, Settle time.Duration
	// Transport, if not nil, carries the requests (tests); else a
	// transport without proxy, that checks certificates unless the
	// target is Insecure.
	Transport http.RoundTripper
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Second, Poll: 500 * time.Millisecond, Settle: 30 * time.Second}
}

// Driver talks to Redfish services. It is safe for concurrent use.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	serial power.Serial
	// http checks certificates, insecure does not.
	http, insecure *http.Client
}

// New returns a driver; log gets one line per power-cycle.
func New(cfg Config, log *slog.Logger) (*Driver, error) {
	if cfg.Timeout <= 0 || cfg.Poll <= 0 || cfg.Settle <= 0 {
		return nil, fmt.Errorf("redfish driver: timeout, poll and settle must be > 0 (got %+v)", cfg)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := func(insecure bool) *http.Client {
		tr := cfg.Transport
		if tr == nil {
			// No proxy from the environment: credentials go to the BMC only.
			tr = &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
				TLSHandshakeTimeout: cfg.Timeout, MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second,
				TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12}} //nolint:gosec // redfish.insecure, the admin's choice
		}
		return &http.Client{Transport: tr, Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Driver{cfg: cfg, log: log, http: client(false), insecure: client(true)}, nil
}

// Cycle power-cycles t's system and says whether the cut was read back.
func (d *Driver) Cycle(ctx context.Context, t Target) (power.Cut, error) {
	var cut power.Cut
	err := d.session(ctx, t, func(s *system) error {
		var err error
		cut, err = power.CycleChassis(ctx, s, "BMC "+t.BMC(), d.cycling(t))
		return err
	})
	d.log.Info("Redfish power-cycle", "node", t.Node, "bmc", t.BMC(), "verified", cut.Verified, "err", err)
	return cut, err
}

// PowerOn switches t's system on.
func (d *Driver) PowerOn(ctx context.Context, t Target) error {
	return d.session(ctx, t, func(s *system) error {
		return power.PowerOnChassis(ctx, s, "BMC "+t.BMC(), d.cycling(t))
	})
}

func (d *Driver) cycling(t Target) power.Cycling {
	return power.Cycling{OffTime: t.OffTime, Poll: d.cfg.Poll, Settle: d.cfg.Settle}
}

func (d *Driver) session(ctx context.Context, t Target, f func(*system) error) error {
	if t.URL == nil {
		return fmt.Errorf("BMC of %s: no redfish.url", t.Node)
	}
	return d.serial.Do(ctx, t.URL.Host, func() (err error) {
		defer func() {
			if r := recover(); r != nil { // a library bug on a strange reply must not end the server
				err = fmt.Errorf("BMC %s: Redfish library failure on its reply: %v", t.BMC(), r)
			}
		}()
		endpoint := t.URL.Scheme + "://" + t.URL.Host
		hc := d.http
		if t.Insecure {
			hc = d.insecure
		}
		c, err := gofish.ConnectContext(ctx, gofish.ClientConfig{Endpoint: endpoint, Username: t.User,
			Password: t.Password.Reveal(), BasicAuth: true, HTTPClient: hc})
		if err != nil {
			return fmt.Errorf("BMC %s: connect as %q: %w", t.BMC(), t.User, classify(err, t.Password))
		}
		defer c.HTTPClient.CloseIdleConnections()
		s := &system{c: c, pw: t.Password}
		if err := s.find(t.URL.Path); err != nil {
			return fmt.Errorf("BMC %s (user %q): %w", t.BMC(), t.User, err)
		}
		return f(s)
	})
}

// system is a power.Chassis over one ComputerSystem.
type system struct {
	c  *gofish.APIClient
	pw power.Secret
	cs *rf.ComputerSystem
}

// find picks the system the URL names or, for a service URL, the
// service's only system.
func (s *system) find(path string) error {
	if id, ok := strings.CutPrefix(strings.TrimSuffix(path, "/")+"/", systemsPath); ok && id != "" {
		cs, err := rf.GetComputerSystem(s.c, systemsPath+strings.TrimSuffix(id, "/"))
		if err != nil {
			return fmt.Errorf("read system %s: %w", strings.TrimSuffix(id, "/"), classify(err, s.pw))
		}
		s.cs = cs
		return nil
	}
	all, err := s.c.Service.Systems()
	if err != nil {
		return fmt.Errorf("list systems: %w", classify(err, s.pw))
	}
	if len(all) != 1 {
		return fmt.Errorf("%w: %d systems, not 1: name one in redfish.url (%s<id>)", power.ErrUnsupported, len(all), systemsPath)
	}
	s.cs = all[0]
	return nil
}

func (s *system) SetPower(ctx context.Context, on bool) error {
	rt := rf.ForceOffResetType
	if on {
		rt = rf.OnResetType
	}
	if err := s.cs.Reset(rt); err != nil {
		return fmt.Errorf("reset %s of system %s: %w", rt, s.cs.ID, classify(err, s.pw))
	}
	return nil
}

func (s *system) IsOn(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	cs, err := rf.GetComputerSystem(s.c, s.cs.ODataID)
	if err != nil {
		return false, classify(err, s.pw)
	}
	switch cs.PowerState {
	case rf.OnPowerState:
		return true, nil
	case rf.OffPowerState:
		return false, nil
	case rf.PoweringOnPowerState, rf.PoweringOffPowerState, rf.PausedPowerState:
		// In between: not off yet (going off) or not on yet (going on).
		return cs.PowerState == rf.PoweringOffPowerState || cs.PowerState == rf.PausedPowerState, nil
	}
	return false, fmt.Errorf("system %s: PowerState %q is not a Redfish power state", cs.ID, bound(string(cs.PowerState), 40))
}

// maxErr bounds the library's text in an error: it quotes the BMC's reply.
const maxErr = 300

// classify wraps the library's error with the power error it means, its
// text bounded and without the password.
func classify(err error, pw power.Secret) error {
	msg := err.Error()
	if p := pw.Reveal(); p != "" {
		msg = strings.ReplaceAll(msg, p, power.Redacted)
	}
	msg = bound(strings.Join(strings.Fields(msg), " "), maxErr)
	var ce *common.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", msg, err)
	case errors.As(err, &ce) && (ce.HTTPReturnedStatusCode == http.StatusUnauthorized || ce.HTTPReturnedStatusCode == http.StatusForbidden):
		return fmt.Errorf("%w (HTTP %d: wrong redfish.user or redfish.password?)", power.ErrDenied, ce.HTTPReturnedStatusCode)
	case strings.Contains(msg, `"error":"401:`) || strings.Contains(msg, `"error":"403:`):
		// gofish quotes a collection member's error as text.
		return fmt.Errorf("%w (HTTP 401 or 403: wrong redfish.user or redfish.password?)", power.ErrDenied)
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return fmt.Errorf("TLS: %s (a self-signed certificate needs redfish.insecure=true, or the BMC's CA trusted by the server)", msg)
	case errors.As(err, &ne) || strings.Contains(msg, "connection refused"):
		return fmt.Errorf("%w: %s", power.ErrUnreachable, msg)
	}
	return errors.New(msg)
}

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
