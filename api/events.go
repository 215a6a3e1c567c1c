package api

// GET /api/v1/events is a stream of server-sent events (text/event-stream)
// for the dashboard (docs/dashboard.md): the platform log and the nodes'
// boot state as they change and, with ?campaign=ID, that campaign's
// events. Each event's data is one JSON value of the type named below.
const (
	SSEHello    = "hello"    // EventsHello, first
	SSELog      = "log"      // LogLine; the event's id is its Seq
	SSENode     = "node"     // NodeChange
	SSECampaign = "campaign" // CampaignEvent, as GET /campaigns/{id}/events sends it
	SSEResync   = "resync"   // Resync: events were missed, reload what What names
)

// MaxEventStreams bounds the event streams a server serves at once.
const MaxEventStreams = 64

// EventsHello opens an event stream: log lines after LogSeq follow.
type EventsHello struct {
	LogSeq   int64  `json:"log_seq"`
	Campaign string `json:"campaign,omitempty"`
}

// NodeChange is a node's new boot state.
type NodeChange struct {
	Name   string      `json:"name"`
	MAC    string      `json:"mac"`
	Booted bool        `json:"booted"`
	Boot   *BootStatus `json:"boot,omitempty"`
}

// Resync says that events were missed (the stream fell behind the log's
// memory): the client reloads what What names ("log", "nodes").
type Resync struct {
	What   string `json:"what"`
	Reason string `json:"reason"`
}

// NodeSet is the body of GET /api/v1/node-sets?set=SET&requester=NAME:
// the nodes a set names, sorted.
type NodeSet struct {
	Nodes []string `json:"nodes"`
}
