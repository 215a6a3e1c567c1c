package server

import (
	"net/http"
	"time"
)

// A stream is an answer that lasts as long as it has something to say:
// reboot progress, waits, log and console follow. http.Server's read and
// write deadlines are for whole requests; a stream lifts them once its
// request is read, and bounds each write by the write timeout instead, so
// a client that reads is served for hours and one that stops reading is
// cut within WriteTimeout.
//
// The read deadline must go too: once the body is read, net/http reads the
// connection in the background to notice a client leaving, and that read
// failing at the deadline would cancel the request's context.
type stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// stream starts a streamed answer on w. Call it after the request body is
// read, before writing the header.
func (s *Server) stream(w http.ResponseWriter) *stream {
	rc := http.NewResponseController(w)
	// Errors: the connection does not support deadlines (a test
	// recorder); the stream then has none, as before.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	return &stream{w: w, rc: rc, timeout: s.cfg.WriteTimeout}
}

func (st *stream) extend() { _ = st.rc.SetWriteDeadline(time.Now().Add(st.timeout)) }

// Write buffers p; the buffer may go to the client, within the write
// timeout.
func (st *stream) Write(p []byte) (int, error) {
	st.extend()
	return st.w.Write(p)
}

// Flush sends what is buffered to the client, within the write timeout.
func (st *stream) Flush() error {
	st.extend()
	return st.rc.Flush()
}

// flushWriter sends every write to the client at once.
type flushWriter struct{ st *stream }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.st.Write(p)
	if err == nil {
		err = f.st.Flush()
	}
	return n, err
}
