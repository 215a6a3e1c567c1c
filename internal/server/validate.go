package server

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/bound"
	"github.com/walt-testbed/walt/internal/experiment"
	"github.com/walt-testbed/walt/internal/nodeset"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlstore"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Bounds of the free-text fields of requests and reports, in bytes
// (docs/api.md, "Bounds").
const (
	maxName      = 64  // device names, as the store takes them
	maxModel     = 128 // node model
	maxCause     = 256 // reboot cause
	maxBootID    = 128 // boot id of a report or a heartbeat
	maxRequester = 64  // user name of the requester
	// maxSet bounds a device set expression before expansion: room for
	// some 20000 names listed one by one; what it expands to is bounded
	// apart (nodeset.MaxNames), before any name is built.
	maxSet      = 512 << 10
	maxAddrText = 64   // IP or MAC address as text
	maxSettings = 64   // name=value words of one config request
	maxSetting  = 1024 // one name=value word
	maxWord     = 32   // enumerated values: action, boot mode, type
)

// checkText refuses a field longer than max bytes or, with printable, one
// that is not printable UTF-8 (no control characters, no invalid bytes).
func checkText(field, v string, max int, printable bool) error {
	if len(v) > max {
		return culprits(invalidf("%s: %d bytes, at most %d", field, len(v), max), []string{field})
	}
	if !printable {
		return nil
	}
	for i, r := range v {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return culprits(invalidf("%s: character %q at byte %d not allowed (printable UTF-8 text only)", field, r, i), []string{field})
		}
	}
	return nil
}

// textField is one field for checkTexts.
type textField struct {
	name, value string
	max         int
	printable   bool
}

func checkTexts(fields ...textField) error {
	for _, f := range fields {
		if err := checkText(f.name, f.value, f.max, f.printable); err != nil {
			return err
		}
	}
	return nil
}

// Common fields of requests.
func setField(v string) textField       { return textField{"set", v, maxSet, true} }
func requesterField(v string) textField { return textField{"requester", v, maxRequester, true} }

func checkSettings(settings []string) error {
	if len(settings) > maxSettings {
		return culprits(invalidf("settings: %d given, at most %d", len(settings), maxSettings), []string{"settings"})
	}
	for i, s := range settings {
		if err := checkText(fmt.Sprintf("settings[%d]", i), s, maxSetting, true); err != nil {
			return err
		}
	}
	return nil
}

// checkRequest bounds the free-text fields of a decoded request body,
// before any handler looks at it. Semantic checks stay with the handlers;
// heartbeats are checked whole by checkHeartbeats.
func checkRequest(v any) error {
	switch r := v.(type) {
	case *api.NodeReport:
		return checkTexts(textField{"mac", r.MAC, maxAddrText, false}, textField{"ip", r.IP, maxAddrText, false},
			textField{"name", r.Name, maxName, false}, textField{"model", r.Model, maxModel, true},
			textField{"boot_mode", r.BootMode, maxWord, false}, textField{"boot_id", r.BootID, maxBootID, true})
	case *api.AddDevice:
		return checkTexts(textField{"name", r.Name, maxName, false}, textField{"ip", r.IP, maxAddrText, false},
			textField{"mac", r.MAC, maxAddrText, false}, textField{"type", r.Type, maxWord, false})
	case *api.RebootRequest:
		return checkTexts(setField(r.Set), requesterField(r.Requester), textField{"cause", r.Cause, maxCause, true})
	case *api.ConfigRequest:
		if err := checkTexts(setField(r.Set), requesterField(r.Requester)); err != nil {
			return err
		}
		return checkSettings(r.Settings)
	case *api.OwnershipRequest:
		return checkTexts(setField(r.Set), requesterField(r.Requester), textField{"action", r.Action, maxWord, false})
	case *api.WaitRequest:
		return checkTexts(setField(r.Set), requesterField(r.Requester))
	case *api.CampaignRequest:
		return checkTexts(setField(r.Set), requesterField(r.Requester), textField{"name", r.Name, api.MaxCampaignName, true},
			textField{"mode", r.Mode, maxWord, true})
	case *api.CampaignStopRequest:
		return checkTexts(requesterField(r.Requester))
	case *api.RescanRequest:
		return checkTexts(setField(r.Set), requesterField(r.Requester))
	case *api.Link:
		return checkTexts(textField{"node", r.Node, maxName, false}, textField{"switch", r.Switch, maxName, false})
	case *api.CreateVNode:
		if err := checkTexts(textField{"name", r.Name, maxName, false}, requesterField(r.Requester)); err != nil {
			return err
		}
		return checkSettings(r.Settings)
	}
	return nil
}

// checkDeviceName is the one rule for new device names (walt device add,
// node reports, walt node create): 1 to 64 letters, digits, '-', '_' and
// '.', starting with a letter or a digit (so neither "." nor ".."), and
// not a keyword of the set syntax (all-nodes, my-nodes, server...).
func checkDeviceName(name string) error {
	if err := sqlstore.ValidateName(name); err != nil {
		return culprits(err, []string{name})
	}
	if !vocab.NameStart(name[0]) {
		return culprits(invalidf("device name '%s': must start with a letter or a digit", name), []string{name})
	}
	if terms, err := nodeset.Parse(name); err != nil || len(terms) != 1 || terms[0].Name != name {
		return culprits(invalidf("'%s' is a keyword of node sets, not a valid device name", name), []string{name})
	}
	return nil
}

// checkMAC normalizes a device's MAC address and refuses those no single
// device can have: all zeros, multicast and broadcast.
func checkMAC(field, mac string) (string, error) {
	m, err := store.NormalizeMAC(mac)
	if err != nil {
		return "", culprits(fmt.Errorf("%s: %w", field, err), []string{mac})
	}
	hw, _ := net.ParseMAC(m)
	switch {
	case m == "00:00:00:00:00:00":
		return "", culprits(invalidf("%s %s: the zero MAC address is no device's", field, m), []string{m})
	case m == "ff:ff:ff:ff:ff:ff":
		return "", culprits(invalidf("%s %s: the broadcast MAC address is no device's", field, m), []string{m})
	case hw[0]&1 != 0:
		return "", culprits(invalidf("%s %s: a multicast MAC address is no device's", field, m), []string{m})
	}
	return m, nil
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4") // and 255.255.255.255
)

// checkIP parses a device's IP address and refuses those the server must
// never connect to as a device: unspecified, "this network" (0/8),
// broadcast and reserved (240/4), multicast, and link-local (169.254/16,
// fe80::/10, which includes cloud metadata services). Loopback stays
// accepted: the simulated lab and virtual nodes live on 127/8.
func checkIP(field, ip string) (netip.Addr, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, culprits(invalidf("%s address '%s' is not valid (expected for example 192.168.152.10)", field, ip), []string{ip})
	}
	a = a.Unmap()
	why := ""
	switch {
	case a.IsUnspecified():
		why = "unspecified"
	case a.Is4() && thisNetwork.Contains(a):
		why = `in 0.0.0.0/8 ("this network")`
	case a.Is4() && reserved4.Contains(a):
		why = "broadcast or reserved (240.0.0.0/4)"
	case a.IsMulticast():
		why = "multicast"
	case a.IsLinkLocalUnicast():
		why = "link-local (169.254.0.0/16, fe80::/10)"
	}
	if why != "" {
		return netip.Addr{}, culprits(invalidf("%s address %s is %s: not a device's address", field, a, why), []string{ip})
	}
	return a, nil
}

// reportedDevice checks a node report whole and returns the device to
// store; old is the stored device with the report's MAC, nil if none. A
// report may register a new node, register a device of unknown type as a
// node (as if new), and update a node's IP, model, boot mode and boot
// state; it never changes a switch, nor a node's virtual flag or name
// (docs/api.md).
func reportedDevice(rep api.NodeReport, old *store.Device, now time.Time) (store.Device, error) {
	if err := checkRequest(&rep); err != nil {
		return store.Device{}, err
	}
	if err := experiment.CheckNodeMethod(rep.NodeMethod); err != nil {
		return store.Device{}, fieldError(err)
	}
	mac, err := checkMAC("mac", rep.MAC)
	if err != nil {
		return store.Device{}, err
	}
	ip, err := checkIP("ip", rep.IP)
	if err != nil {
		return store.Device{}, err
	}
	if !bootModes[rep.BootMode] {
		return store.Device{}, culprits(invalidf("boot_mode '%s' is not valid (expected network, hybrid-volatile or hybrid-persistent)", rep.BootMode), []string{rep.BootMode})
	}
	name := rep.Name
	if name == "" {
		name = "node-" + strings.ReplaceAll(mac[9:], ":", "")
	}
	if err := checkDeviceName(name); err != nil {
		return store.Device{}, err
	}
	d := store.Device{
		MAC: mac, Name: name, IP: ip.String(), Type: store.TypeNode, Model: rep.Model, Virtual: rep.Virtual,
		BootMode: rep.BootMode, Booted: true, CreatedAt: now, LastSeen: now,
	}
	if old == nil {
		return d, nil
	}
	d.CreatedAt = old.CreatedAt
	switch {
	case old.Type == store.TypeUnknown:
		// A device of unknown type (added by hand or seen by a rescan as
		// unknown-xxxxxx) registers now, as a new node would: nothing
		// was known of it but its MAC.
	case old.Type != store.TypeNode:
		return store.Device{}, culprits(invalidf("mac %s: device %s is a %s: a node report cannot make it a node", mac, old.Name, old.Type), []string{old.Name})
	case old.Virtual != rep.Virtual:
		return store.Device{}, culprits(invalidf("virtual: %t, but node %s (mac %s) has virtual %t: a node report cannot change it", rep.Virtual, old.Name, mac, old.Virtual), []string{old.Name})
	default:
		d.Name = old.Name // a known node keeps its name
	}
	return d, nil
}

// checkHeartbeats checks a heartbeat request whole and returns the
// normalized MAC of each beat.
func checkHeartbeats(req api.Heartbeats) ([]string, error) {
	if len(req.Beats) > maxBeats {
		return nil, culprits(invalidf("beats: %d heartbeats in one request, at most %d", len(req.Beats), maxBeats), []string{"beats"})
	}
	macs := make([]string, len(req.Beats))
	for i, b := range req.Beats {
		m, err := checkBeat("", b)
		if err != nil {
			// Again, to name the beat: its name is made only for an error
			// (a request holds up to maxBeats beats).
			_, err = checkBeat(fmt.Sprintf("beats[%d]", i), b)
			return nil, err
		}
		macs[i] = m
	}
	return macs, nil
}

// checkBeat checks one heartbeat, its fields named after field
// ("beats[3]"; "" gives the fields' own names), and returns its normalized
// MAC.
func checkBeat(field string, b api.Heartbeat) (string, error) {
	if field != "" {
		field += "."
	}
	if err := checkTexts(textField{field + "mac", b.MAC, maxAddrText, false}, textField{field + "boot_id", b.BootID, maxBootID, true}); err != nil {
		return "", err
	}
	return checkMAC(field+"mac", b.MAC)
}

// limitRange is the range of the limit query parameter of the history and
// the platform log: 0 (all, up to the bound) to api.MaxLimit.
var limitRange = bound.Int{Name: "limit", Min: 0, Max: api.MaxLimit}

// queryLimit parses the limit query parameter, def when absent.
func queryLimit(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := limitRange.Parse(v)
	if err != nil {
		return 0, culprits(invalidf("%v", err), []string{"limit"})
	}
	if n == 0 {
		n = api.MaxLimit
	}
	return int(n), nil
}
