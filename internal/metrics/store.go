package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Store returns st with each call timed as walt_store_request_duration_seconds
// {op} and its failures counted as walt_store_request_errors_total{op}. A
// not-found answer is an answer, not a failure.
func (m *Metrics) Store(st store.Store) store.Store { return timedStore{st, m} }

// timedStore embeds the store so that a method added to store.Store
// passes through, untimed, until it is timed here
// (TestStoreTimesEveryMethod fails meanwhile).
type timedStore struct {
	store.Store
	m *Metrics
}

// done observes the call op started at start; err is read when it ends.
func (s timedStore) done(op string, start time.Time, err *error) {
	s.m.storeLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	c := s.m.storeErrors.WithLabelValues(op)
	if *err != nil && !errors.Is(*err, vocab.ErrNotFound) {
		c.Inc()
	}
}

func (s timedStore) AddDevice(ctx context.Context, d store.Device) (err error) {
	defer s.done("add_device", time.Now(), &err)
	return s.Store.AddDevice(ctx, d)
}

func (s timedStore) ReportDevice(ctx context.Context, d store.Device) (_ store.Device, err error) {
	defer s.done("report_device", time.Now(), &err)
	return s.Store.ReportDevice(ctx, d)
}

func (s timedStore) Device(ctx context.Context, mac string) (_ store.Device, err error) {
	defer s.done("device", time.Now(), &err)
	return s.Store.Device(ctx, mac)
}

func (s timedStore) DeviceByName(ctx context.Context, name string) (_ store.Device, err error) {
	defer s.done("device_by_name", time.Now(), &err)
	return s.Store.DeviceByName(ctx, name)
}

func (s timedStore) Devices(ctx context.Context) (_ []store.Device, err error) {
	defer s.done("devices", time.Now(), &err)
	return s.Store.Devices(ctx)
}

func (s timedStore) ForgetDevice(ctx context.Context, mac string) (err error) {
	defer s.done("forget_device", time.Now(), &err)
	return s.Store.ForgetDevice(ctx, mac)
}

func (s timedStore) ApplyChanges(ctx context.Context, changes []store.DeviceChange) (err error) {
	defer s.done("apply_changes", time.Now(), &err)
	return s.Store.ApplyChanges(ctx, changes)
}

func (s timedStore) SetBooted(ctx context.Context, macs []string, booted bool) (err error) {
	defer s.done("set_booted", time.Now(), &err)
	return s.Store.SetBooted(ctx, macs, booted)
}

func (s timedStore) Settings(ctx context.Context) (_ map[string]map[string]string, err error) {
	defer s.done("settings", time.Now(), &err)
	return s.Store.Settings(ctx)
}

func (s timedStore) SetLink(ctx context.Context, l store.Link) (err error) {
	defer s.done("set_link", time.Now(), &err)
	return s.Store.SetLink(ctx, l)
}

func (s timedStore) DeleteLink(ctx context.Context, nodeMAC string) (err error) {
	defer s.done("delete_link", time.Now(), &err)
	return s.Store.DeleteLink(ctx, nodeMAC)
}

func (s timedStore) Links(ctx context.Context) (_ []store.Link, err error) {
	defer s.done("links", time.Now(), &err)
	return s.Store.Links(ctx)
}

func (s timedStore) AddPoEOff(ctx context.Context, p store.PoEOff) (err error) {
	defer s.done("add_poe_off", time.Now(), &err)
	return s.Store.AddPoEOff(ctx, p)
}

func (s timedStore) RemovePoEOff(ctx context.Context, switchMAC string, port int) (err error) {
	defer s.done("remove_poe_off", time.Now(), &err)
	return s.Store.RemovePoEOff(ctx, switchMAC, port)
}

func (s timedStore) PoEOffs(ctx context.Context) (_ []store.PoEOff, err error) {
	defer s.done("poe_offs", time.Now(), &err)
	return s.Store.PoEOffs(ctx)
}

func (s timedStore) AddReboots(ctx context.Context, rs []store.Reboot) (_ []string, err error) {
	defer s.done("add_reboots", time.Now(), &err)
	return s.Store.AddReboots(ctx, rs)
}

func (s timedStore) FinishReboots(ctx context.Context, rs []store.Reboot) (err error) {
	defer s.done("finish_reboots", time.Now(), &err)
	return s.Store.FinishReboots(ctx, rs)
}

func (s timedStore) DeleteReboots(ctx context.Context, ids []string) (err error) {
	defer s.done("delete_reboots", time.Now(), &err)
	return s.Store.DeleteReboots(ctx, ids)
}

func (s timedStore) InterruptReboots(ctx context.Context, server string) (_ int, err error) {
	defer s.done("interrupt_reboots", time.Now(), &err)
	return s.Store.InterruptReboots(ctx, server)
}

func (s timedStore) LatestReboots(ctx context.Context, since time.Time) (_ []store.Reboot, err error) {
	defer s.done("latest_reboots", time.Now(), &err)
	return s.Store.LatestReboots(ctx, since)
}

func (s timedStore) UnbootedCampaignBoots(ctx context.Context, state string, outcomes []string) (_ []store.CampaignBoot, err error) {
	defer s.done("unbooted_campaign_boots", time.Now(), &err)
	return s.Store.UnbootedCampaignBoots(ctx, state, outcomes)
}

func (s timedStore) Reboots(ctx context.Context, f store.RebootFilter) (_ []store.Reboot, err error) {
	defer s.done("reboots", time.Now(), &err)
	return s.Store.Reboots(ctx, f)
}

func (s timedStore) SetBootStatuses(ctx context.Context, bs []store.BootStatus) (err error) {
	defer s.done("set_boot_statuses", time.Now(), &err)
	return s.Store.SetBootStatuses(ctx, bs)
}

func (s timedStore) BootStatuses(ctx context.Context) (_ []store.BootStatus, err error) {
	defer s.done("boot_statuses", time.Now(), &err)
	return s.Store.BootStatuses(ctx)
}

func (s timedStore) SetRebootsBooted(ctx context.Context, bs []store.RebootBoot) (err error) {
	defer s.done("set_reboots_booted", time.Now(), &err)
	return s.Store.SetRebootsBooted(ctx, bs)
}

func (s timedStore) AddLogLines(ctx context.Context, ls []store.LogLine) (err error) {
	defer s.done("add_log_lines", time.Now(), &err)
	return s.Store.AddLogLines(ctx, ls)
}

func (s timedStore) LogLines(ctx context.Context, after int64, limit int) (_ []store.LogLine, err error) {
	defer s.done("log_lines", time.Now(), &err)
	return s.Store.LogLines(ctx, after, limit)
}

// Close is not timed: the server never closes its store.
func (s timedStore) Close() error { return s.Store.Close() }

func (s timedStore) AddCampaign(ctx context.Context, c store.Campaign, nodes []store.CampaignNode) (_ string, err error) {
	defer s.done("add_campaign", time.Now(), &err)
	return s.Store.AddCampaign(ctx, c, nodes)
}

func (s timedStore) UpdateCampaign(ctx context.Context, c store.Campaign) (err error) {
	defer s.done("update_campaign", time.Now(), &err)
	return s.Store.UpdateCampaign(ctx, c)
}

func (s timedStore) Campaigns(ctx context.Context, f store.CampaignFilter) (_ []store.Campaign, err error) {
	defer s.done("campaigns", time.Now(), &err)
	return s.Store.Campaigns(ctx, f)
}

func (s timedStore) CampaignNodes(ctx context.Context, id string) (_ []store.CampaignNode, err error) {
	defer s.done("campaign_nodes", time.Now(), &err)
	return s.Store.CampaignNodes(ctx, id)
}

func (s timedStore) SaveCampaignProgress(ctx context.Context, nodes []store.CampaignNode, boots []store.CampaignBoot) (err error) {
	defer s.done("save_campaign_progress", time.Now(), &err)
	return s.Store.SaveCampaignProgress(ctx, nodes, boots)
}

func (s timedStore) CampaignBoots(ctx context.Context, id string) (_ []store.CampaignBoot, err error) {
	defer s.done("campaign_boots", time.Now(), &err)
	return s.Store.CampaignBoots(ctx, id)
}

func (s timedStore) SetQuarantines(ctx context.Context, qs []store.Quarantine) (err error) {
	defer s.done("set_quarantines", time.Now(), &err)
	return s.Store.SetQuarantines(ctx, qs)
}

func (s timedStore) ClearQuarantine(ctx context.Context, mac string) (_ bool, err error) {
	defer s.done("clear_quarantine", time.Now(), &err)
	return s.Store.ClearQuarantine(ctx, mac)
}

func (s timedStore) Quarantines(ctx context.Context) (_ []store.Quarantine, err error) {
	defer s.done("quarantines", time.Now(), &err)
	return s.Store.Quarantines(ctx)
}

// SetBootState times the store's one-transaction flush of the boot
// tracker, when it has one (sqlstore's); without, it is an error, and the
// tracker writes each part through the methods above.
func (s timedStore) SetBootState(ctx context.Context, bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) (err error) {
	sw, ok := s.Store.(interface {
		SetBootState(context.Context, []store.BootStatus, []store.RebootBoot, []store.LogLine) error
	})
	if !ok {
		return errors.New("the store writes boot state in parts")
	}
	defer s.done("set_boot_state", time.Now(), &err)
	return sw.SetBootState(ctx, bs, rb, ls)
}

func (s timedStore) AddUser(ctx context.Context, u store.User, t store.Token) (err error) {
	defer s.done("add_user", time.Now(), &err)
	return s.Store.AddUser(ctx, u, t)
}

func (s timedStore) Users(ctx context.Context) (_ []store.User, err error) {
	defer s.done("users", time.Now(), &err)
	return s.Store.Users(ctx)
}

func (s timedStore) RemoveUser(ctx context.Context, name string) (err error) {
	defer s.done("remove_user", time.Now(), &err)
	return s.Store.RemoveUser(ctx, name)
}

func (s timedStore) AddToken(ctx context.Context, t store.Token) (err error) {
	defer s.done("add_token", time.Now(), &err)
	return s.Store.AddToken(ctx, t)
}

func (s timedStore) RevokeTokens(ctx context.Context, user string) (_ int, err error) {
	defer s.done("revoke_tokens", time.Now(), &err)
	return s.Store.RevokeTokens(ctx, user)
}

func (s timedStore) UserByToken(ctx context.Context, hash string) (_ store.User, err error) {
	defer s.done("user_by_token", time.Now(), &err)
	return s.Store.UserByToken(ctx, hash)
}

func (s timedStore) AddAudit(ctx context.Context, e store.AuditEntry) (_ int64, err error) {
	defer s.done("add_audit", time.Now(), &err)
	return s.Store.AddAudit(ctx, e)
}

func (s timedStore) AuditEntries(ctx context.Context, after int64, limit int) (_ []store.AuditEntry, err error) {
	defer s.done("audit_entries", time.Now(), &err)
	return s.Store.AuditEntries(ctx, after, limit)
}
