package api

// WhoAmI is the answer of GET /api/v1/whoami: the user of the request's
// token (walt login checks a token with it).
type WhoAmI struct {
	User  string `json:"user"`
	Admin bool   `json:"admin"`
}
