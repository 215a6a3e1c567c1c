package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vnode"
	"github.com/walt-testbed/walt/internal/vocab"
)

// vnodeRoutes adds the virtual node endpoints to the mux.
func (s *Server) vnodeRoutes() {
	p := api.Prefix
	s.mux.HandleFunc("GET "+p+"/vnodes", s.getVNodes)
	s.mux.HandleFunc("POST "+p+"/vnodes", jsonHandler(s.log, http.StatusCreated, s.createVNode))
	s.mux.HandleFunc("DELETE "+p+"/vnodes/{name}", s.deleteVNode)
	s.mux.HandleFunc("GET "+p+"/vnodes/{name}/console", s.vnodeConsole)
}

func (s *Server) getVNodes(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		writeError(w, s.log, err)
		return
	}
	list, err := s.listVNodes(r.Context())
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// boolParam reads an optional boolean query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, culprits(invalidf("%s '%s' is not valid (expected true or false)", name, v), []string{v})
	}
	return b, nil
}

// requesterForce reads the query of a DELETE: ?requester=USER&force=BOOL,
// nothing else.
func requesterForce(r *http.Request) (string, bool, error) {
	if err := checkQuery(r, "requester", "force"); err != nil {
		return "", false, err
	}
	force, err := boolParam(r, "force")
	if err != nil {
		return "", false, err
	}
	requester := r.URL.Query().Get("requester")
	if err := checkText("requester", requester, maxRequester, true); err != nil {
		return "", false, err
	}
	requester, err = requesterOf(r.Context(), requester)
	return requester, force, err
}

func (s *Server) deleteVNode(w http.ResponseWriter, r *http.Request) {
	requester, force, err := requesterForce(r)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	res, err := s.removeVNode(r.Context(), r.PathValue("name"), requester, force)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// vnodeConsole sends the console log of a virtual node as text; with
// follow=true it keeps sending what is appended until the client leaves,
// the node is removed or the server shuts down.
func (s *Server) vnodeConsole(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "follow"); err != nil {
		writeError(w, s.log, err)
		return
	}
	follow, err := boolParam(r, "follow")
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	name := r.PathValue("name")
	d, err := s.deviceNamed(r.Context(), name)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	if d.Type != store.TypeNode || !d.Virtual {
		writeError(w, s.log, culprits(invalidf("%s is not a virtual node: only virtual nodes have a console here.", name), []string{name}))
		return
	}
	if _, ok := s.vnodeAddr(name); !ok {
		if s.vn.sup == nil {
			writeError(w, s.log, errNoVNodes)
		} else {
			writeError(w, s.log, culprits(kindf(vocab.ErrNotFound, "%s is not a virtual node of this server (not created by walt node create).", name), []string{name}))
		}
		return
	}
	path := s.vn.sup.ConsolePath(name)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !follow {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			w.WriteHeader(http.StatusOK) // no machine started yet
			return
		}
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		defer f.Close()
		w.WriteHeader(http.StatusOK)
		io.Copy(w, f)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	go func() {
		// End the stream when the node is removed.
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, ok := s.vnodeAddr(name); !ok {
					cancel()
					return
				}
			}
		}
	}()
	st := s.stream(w)
	w.WriteHeader(http.StatusOK)
	st.Flush()
	if err := vnode.FollowConsole(ctx, path, flushWriter{st}, true); err != nil && ctx.Err() == nil {
		s.log.Warn("console stream ended", "node", name, "err", err)
	}
}
