package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/nodeset"
	"github.com/walt-testbed/walt/internal/vocab"
)

// errorTable maps error kinds to HTTP statuses and wire codes, first match
// wins. The client maps the codes back to api sentinels.
var errorTable = []struct {
	kind   error
	status int
	code   api.Code
}{
	{vocab.ErrInvalid, http.StatusBadRequest, api.CodeInvalid},
	{nodeset.ErrSyntax, http.StatusBadRequest, api.CodeInvalid},
	{vocab.ErrNotFound, http.StatusNotFound, api.CodeNotFound},
	{vocab.ErrConflict, http.StatusConflict, api.CodeConflict},
	{vocab.ErrForbidden, http.StatusForbidden, api.CodeNotOwned},
	{errUnauthenticated, http.StatusUnauthorized, api.CodeUnauthenticated},
	{errForbidden, http.StatusForbidden, api.CodeForbidden},
	{vocab.ErrUnavailable, http.StatusServiceUnavailable, api.CodeUnavailable},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, api.CodeTimeout},
}

// culpritError names the objects at fault; they go to api.Error.Culprits.
type culpritError struct {
	err   error
	names []string
}

func (e *culpritError) Error() string { return e.err.Error() }
func (e *culpritError) Unwrap() error { return e.err }

func culprits(err error, names []string) error { return &culpritError{err: err, names: names} }

// invalidf returns an ErrInvalid error whose message is exactly the
// formatted text (the kind is not repeated in it).
func invalidf(format string, args ...any) error {
	return &kindError{kind: vocab.ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

func kindf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// kindError carries a kind without adding its name to the message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func plural(names []string, one, many string) string {
	if len(names) == 1 {
		return one
	}
	return many
}

// toAPIError converts err for the wire. Unclassified errors are server-side
// failures: they get an ID, logged with the full error.
func toAPIError(err error, log *slog.Logger) (int, *api.Error) {
	var ae *api.Error
	if errors.As(err, &ae) {
		return http.StatusBadRequest, ae
	}
	out := &api.Error{Message: err.Error()}
	var ce *culpritError
	if errors.As(err, &ce) {
		out.Culprits = ce.names
	}
	for _, row := range errorTable {
		if errors.Is(err, row.kind) {
			out.Code = row.code
			return row.status, out
		}
	}
	var b [6]byte
	rand.Read(b[:])
	out.ID = hex.EncodeToString(b[:])
	out.Code = api.CodeInternal
	log.Error("request failed", "err", err, "error_id", out.ID)
	out.Message = "internal server error"
	return http.StatusInternalServerError, out
}

func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	status, ae := toAPIError(err, log)
	writeJSON(w, status, api.ErrorBody{Error: ae})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", api.ContentJSON)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// maxBody bounds a JSON request body.
const maxBody = 1 << 20

// decodeJSON reads a JSON body into v, refusing unknown fields, trailing
// data after the JSON value and query parameters (no JSON endpoint takes
// any), then checks the bounds of v's fields (checkRequest).
func decodeJSON(r *http.Request, v any) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return kindf(vocab.ErrInvalid, "decode %s %s request body: %v", r.Method, r.URL.Path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return kindf(vocab.ErrInvalid, "decode %s %s request body: trailing data after the JSON body", r.Method, r.URL.Path)
	}
	if err := checkRequest(v); err != nil {
		return err
	}
	noteTarget(r.Context(), auditTarget(v))
	return bindRequester(r.Context(), v)
}

// checkQuery refuses a malformed query, query parameters other than
// known, naming the first unknown one, and repeated ones.
func checkQuery(r *http.Request, known ...string) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return invalidf("query of %s %s: %v", r.Method, r.URL.Path, err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(known, k) {
			accepted := "none"
			if len(known) > 0 {
				accepted = strings.Join(known, ", ")
			}
			return culprits(invalidf("unknown query parameter '%.64s' for %s %s (parameters: %s)", k, r.Method, r.URL.Path, accepted), []string{k})
		}
		if len(q[k]) > 1 {
			return culprits(invalidf("query parameter '%s' given %d times for %s %s: at most once", k, len(q[k]), r.Method, r.URL.Path), []string{k})
		}
	}
	return nil
}

// jsonHandler serves a JSON request with fn and writes its JSON answer.
func jsonHandler[Req, Resp any](log *slog.Logger, status int, fn func(context.Context, Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, log, err)
			return
		}
		res, err := fn(r.Context(), req)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, status, res)
	}
}
