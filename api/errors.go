package api

import "strings"

// Code is the wire code of an error kind.
type Code string

// Error codes. Each maps to one HTTP status on the server side.
const (
	CodeInvalid     Code = "invalid"     // 400: bad input; nothing changed
	CodeNotFound    Code = "not_found"   // 404: a named object does not exist
	CodeConflict    Code = "conflict"    // 409: clashes with existing data
	CodeNotOwned    Code = "not_owned"   // 403: nodes owned by other users, retry with force
	CodeUnavailable Code = "unavailable" // 503: the server cannot serve now
	CodeTimeout     Code = "timeout"     // 504: the operation ran out of time
	CodeInternal    Code = "internal"    // 500: a bug or a server-side failure; see ID in the log
	CodeVersion     Code = "bad_version" // 404: unknown API version
	// CodeUnauthenticated: no token, or one unknown, revoked or expired.
	CodeUnauthenticated Code = "unauthenticated" // 401
	// CodeForbidden: the token's user may not do this (admins only).
	CodeForbidden Code = "forbidden" // 403
)

// Error is the body of every failed response: {"error": {...}}.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Culprits names the objects at fault, such as nodes owned by others.
	Culprits []string `json:"culprits,omitempty"`
	// ID identifies a server-side failure in the server's log.
	ID string `json:"id,omitempty"`
}

// ErrorBody wraps Error on the wire.
type ErrorBody struct {
	Error *Error `json:"error"`
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = strings.ReplaceAll(string(e.Code), "_", " ")
	}
	if e.ID != "" {
		msg += " (error id " + e.ID + ")"
	}
	return msg
}

// Is matches kind sentinels: errors.Is(err, api.ErrNotFound) is true for
// any *Error with CodeNotFound.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Kind sentinels for errors.Is.
var (
	ErrInvalid     = &Error{Code: CodeInvalid}
	ErrNotFound    = &Error{Code: CodeNotFound}
	ErrConflict    = &Error{Code: CodeConflict}
	ErrNotOwned    = &Error{Code: CodeNotOwned}
	ErrUnavailable = &Error{Code: CodeUnavailable}
	ErrTimeout     = &Error{Code: CodeTimeout}
	ErrInternal    = &Error{Code: CodeInternal}

	ErrUnauthenticated = &Error{Code: CodeUnauthenticated}
	ErrForbidden       = &Error{Code: CodeForbidden}
)
