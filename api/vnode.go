package api

import "time"

// CreateVNode is the body of POST /api/v1/vnodes: `walt node create NAME
// [k=v ...]`. The server stores a virtual node owned by Requester and
// starts its machine.
type CreateVNode struct {
	Name string `json:"name"`
	// Settings are "name=value" words, as for POST /api/v1/config; the
	// vnode settings cpu.cores, ram and boot.delay among them.
	Settings  []string `json:"settings,omitempty"`
	Requester string   `json:"requester"`
}

// VNodeResult is the answer to POST /api/v1/vnodes (201) and DELETE
// /api/v1/vnodes/{name} (200).
type VNodeResult struct {
	// Node is the node as GET /api/v1/nodes shows it (empty after removal).
	Node *Node `json:"node,omitempty"`
	// Messages are lines for the user.
	Messages []string `json:"messages"`
}

// VNode is the supervisor's view of one virtual node (GET /api/v1/vnodes).
type VNode struct {
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	Backend string `json:"backend"` // qemu or process
	// Accel is what the running (or last) QEMU machine runs under: kvm
	// or tcg; empty for the process backend.
	Accel string `json:"accel,omitempty"`
	// Addr is where the server reaches the node's agent (host:port).
	Addr string `json:"addr"`
	// Settings are the VM settings the next machine start will use.
	Settings map[string]string `json:"settings"`
	Running  bool              `json:"running"`
	PID      int               `json:"pid,omitempty"`
	// Generation counts the machines started so far, the running one
	// included: each boot of the node is a new generation.
	Generation uint64     `json:"generation"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	// LastExit says why the previous machine exited.
	LastExit string `json:"last_exit,omitempty"`
	Restarts uint64 `json:"restarts"`
}

// VNodeList is the body of GET /api/v1/vnodes.
type VNodeList struct {
	Backend string  `json:"backend"` // "" when the server runs no vnodes
	VNodes  []VNode `json:"vnodes"`
}
