package vocab

import "errors"

// Error kinds. Every error a store (internal/store) or the server's services
// return that is not an I/O failure wraps one of them, so callers test with
// errors.Is. The server maps them to wire codes in one table
// (internal/server/errors.go). Power drivers have kinds of their own, the
// causes of a failed power operation (internal/power).
var (
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change clashes with existing data (a name or MAC
	// already in use, an object changed by someone else).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input is malformed; nothing was changed.
	ErrInvalid = errors.New("invalid")
	// ErrForbidden: the caller may not do this without confirmation, such as
	// acting on a node owned by another user.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the backend cannot serve the request now.
	ErrUnavailable = errors.New("unavailable")
)
