package poe

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

const redacted = "<redacted>"

// Community is an SNMP community string: a password. Every way of printing it
// (fmt verbs, slog, JSON, text marshalling) shows "<redacted>"; only Reveal
// returns the secret, for the SNMP session.
type Community struct {
	secret string
}

// NewCommunity wraps a community string.
func NewCommunity(s string) Community { return Community{secret: s} }

// Reveal returns the community string. Call it only to build an SNMP request.
func (c Community) Reveal() string { return c.secret }

// IsZero reports whether the community is empty.
func (c Community) IsZero() bool { return c.secret == "" }

func (c Community) String() string                { return redacted }
func (c Community) GoString() string              { return "poe.Community{" + redacted + "}" }
func (c Community) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (c Community) MarshalJSON() ([]byte, error)  { return []byte(`"` + redacted + `"`), nil }
func (c Community) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (c Community) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }
func (c Community) equal(other Community) bool    { return c.secret == other.secret }
func (c *Community) UnmarshalText(b []byte) error { c.secret = string(b); return nil }
func (c *Community) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &c.secret) }
