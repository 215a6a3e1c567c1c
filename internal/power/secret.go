package power

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what every printed form of a Secret shows.
const Redacted = "<redacted>"

// Secret is a password of a power source (a BMC's). Every way of printing
// it (fmt verbs, slog, JSON, text marshalling) shows Redacted; only Reveal
// returns it, for the protocol exchange that needs it.
type Secret struct{ s string }

// NewSecret wraps a password.
func NewSecret(s string) Secret { return Secret{s: s} }

// Reveal returns the password. Call it only to authenticate to the device.
func (s Secret) Reveal() string { return s.s }

// IsZero reports whether the password is empty.
func (s Secret) IsZero() bool { return s.s == "" }

func (s Secret) String() string                { return Redacted }
func (s Secret) GoString() string              { return "power.Secret{" + Redacted + "}" }
func (s Secret) LogValue() slog.Value          { return slog.StringValue(Redacted) }
func (s Secret) MarshalJSON() ([]byte, error)  { return json.Marshal(Redacted) }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(Redacted), nil }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }
