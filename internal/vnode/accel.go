package vnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Accelerators QEMU machines run under.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// AccelStatus says which accelerator the QEMU backend starts machines
// under, and why.
type AccelStatus struct {
	// Accel is AccelKVM or AccelTCG: what the next machine starts under.
	Accel string
	// Probing is true while the KVM trial boot runs; machines start under
	// TCG until it answers.
	Probing bool
	// Reason says how Accel was chosen, in a few words.
	Reason string
}

// An Accelerated backend chooses, at each machine start, how the machine
// runs; the choice can change during the backend's life (QEMU: TCG until
// the KVM trial boot says KVM works). The supervisor asks it before each
// start and passes the answer in Machine.Accel, so that each machine's
// accelerator is known (Status.Accel).
type Accelerated interface {
	Accel() string
}

// probeCacheLimit bounds the probe cache file read at start-up.
const probeCacheLimit = 4 << 10

// probeMemo is the answer of one KVM trial boot, remembered in a file so
// that only the first server start after a kernel boot pays for it: the
// answer holds for as long as the kernel, the QEMU binary and the KVM device
// are the same.
type probeMemo struct {
	BootID string    `json:"boot_id"`
	QEMU   string    `json:"qemu"` // path, size and modification time of the binary
	Device string    `json:"device"`
	Accel  string    `json:"accel"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// probeKey returns the boot id and the QEMU identity a memo must match, or
// an error when they cannot be known (then nothing is remembered).
func (b *QEMUBackend) probeKey() (bootID, qemu string, err error) {
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", "", fmt.Errorf("read the kernel's boot id: %w", err)
	}
	fi, err := os.Stat(b.binary)
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(string(id)), fmt.Sprintf("%s %d %d", b.binary, fi.Size(), fi.ModTime().UnixNano()), nil
}

// parseProbeMemo decodes a memo file, checking every field; the file lives
// in the data directory, but a damaged or foreign one must not choose the
// accelerator.
func parseProbeMemo(data []byte) (probeMemo, error) {
	var m probeMemo
	if len(data) > probeCacheLimit {
		return m, fmt.Errorf("larger than %d bytes", probeCacheLimit)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, err
	}
	switch {
	case m.Accel != AccelKVM && m.Accel != AccelTCG:
		return m, fmt.Errorf("accel %q: want kvm or tcg", m.Accel)
	case m.BootID == "" || m.QEMU == "" || m.Device == "":
		return m, errors.New("boot_id, qemu or device missing")
	case len(m.Reason) > 512:
		return m, errors.New("reason longer than 512 bytes")
	}
	return m, nil
}

// recalled returns the remembered answer for this kernel boot, QEMU binary
// and KVM device, if any.
func (b *QEMUBackend) recalled() (probeMemo, bool) {
	if b.probeCache == "" {
		return probeMemo{}, false
	}
	bootID, qemu, err := b.probeKey()
	if err != nil {
		return probeMemo{}, false
	}
	f, err := os.Open(b.probeCache)
	if err != nil {
		return probeMemo{}, false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, probeCacheLimit+1))
	if err != nil {
		return probeMemo{}, false
	}
	m, err := parseProbeMemo(data)
	if err != nil {
		b.log.Warn("ignoring the remembered KVM trial boot", "file", b.probeCache, "err", err)
		return probeMemo{}, false
	}
	if m.BootID != bootID || m.QEMU != qemu || m.Device != b.kvmDevice {
		return probeMemo{}, false
	}
	return m, true
}

// remember writes the answer of a trial boot, atomically and readable by
// the server's user only.
func (b *QEMUBackend) remember(st AccelStatus) {
	if b.probeCache == "" {
		return
	}
	bootID, qemu, err := b.probeKey()
	if err != nil {
		return
	}
	data, _ := json.Marshal(probeMemo{BootID: bootID, QEMU: qemu, Device: b.kvmDevice, Accel: st.Accel, Reason: st.Reason, At: time.Now().UTC()})
	tmp, err := os.CreateTemp(filepath.Dir(b.probeCache), ".kvm-probe-*")
	if err == nil {
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), b.probeCache)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		b.log.Warn("cannot remember the KVM trial boot: the next start will run it again", "file", b.probeCache, "err", err)
	}
}

// initialAccel chooses the accelerator without running QEMU: what was
// asked for, TCG when the KVM device cannot be opened, the remembered
// answer of a trial boot, or TCG with a trial boot pending.
func (b *QEMUBackend) initialAccel(asked string) (AccelStatus, error) {
	switch asked {
	case AccelKVM, AccelTCG:
		return AccelStatus{Accel: asked, Reason: "asked for"}, nil
	case "", "auto":
	default:
		return AccelStatus{}, fmt.Errorf("qemu backend: invalid accel %q: want auto, kvm or tcg", asked)
	}
	f, err := os.OpenFile(b.kvmDevice, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return AccelStatus{Accel: AccelTCG, Reason: "no " + b.kvmDevice}, nil
		}
		return AccelStatus{Accel: AccelTCG, Reason: err.Error()}, nil
	}
	f.Close()
	if m, ok := b.recalled(); ok {
		return AccelStatus{Accel: m.Accel, Reason: m.Reason + " (trial boot of " + m.At.Format(time.RFC3339) + ", same kernel boot)"}, nil
	}
	return AccelStatus{Accel: AccelTCG, Probing: true, Reason: "kvm trial boot pending: tcg meanwhile"}, nil
}

// AccelStatus returns the accelerator the next machine starts under.
func (b *QEMUBackend) AccelStatus() AccelStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.accel
}

// Accel returns "kvm" or "tcg": what the next machine starts under.
func (b *QEMUBackend) Accel() string { return b.AccelStatus().Accel }

// ProbeAccel settles the accelerator: when NewQEMUBackend left a KVM trial
// boot pending, it boots the image under KVM (bounded by
// QEMUConfig.ProbeTimeout and ctx), remembers the answer for this kernel
// boot, and switches the backend to KVM if the guest came up. It returns the
// settled status; calls after the first, or concurrent with it, wait for the
// same answer (or their ctx). The server runs it in the background once it
// serves its API, so that no start waits for the trial.
func (b *QEMUBackend) ProbeAccel(ctx context.Context) AccelStatus {
	b.probeOnce.Do(func() {
		go func() {
			defer close(b.probed)
			if !b.AccelStatus().Probing {
				return
			}
			// The trial is the backend's, not one caller's: it stops only
			// with the context of the first caller.
			start := time.Now()
			err := b.probeKVM(ctx, b.probeTimeout)
			if ctx.Err() != nil {
				b.mu.Lock()
				b.accel = AccelStatus{Accel: AccelTCG, Reason: "kvm trial boot interrupted"}
				b.mu.Unlock()
				return
			}
			st := AccelStatus{Accel: AccelKVM, Reason: "kvm trial boot succeeded"}
			if err != nil {
				st = AccelStatus{Accel: AccelTCG, Reason: err.Error()}
			}
			b.mu.Lock()
			b.accel = st
			b.mu.Unlock()
			b.remember(st)
			elapsed := time.Since(start).Round(time.Millisecond)
			if st.Accel == AccelKVM {
				b.log.Info("kvm works: virtual nodes start under kvm from now on (running ones at their next boot)", "elapsed", elapsed)
			} else {
				b.log.Info("kvm unusable: virtual nodes run under software emulation (tcg)", "reason", st.Reason, "elapsed", elapsed)
			}
		}()
	})
	select {
	case <-b.probed:
	case <-ctx.Done():
	}
	return b.AccelStatus()
}
