package vnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// FollowConsole copies the console log at path to w, then keeps copying what
// is appended until ctx is done, like "tail -f" (from the start of the file
// when fromStart, else from its current end). It notices the log being moved
// aside to console.log.1 and follows the new file. It returns nil when ctx
// is done.
func FollowConsole(ctx context.Context, path string, w io.Writer, fromStart bool) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	open := func(atEnd bool) error {
		nf, err := os.Open(path)
		if err != nil {
			return err
		}
		if atEnd {
			if _, err := nf.Seek(0, io.SeekEnd); err != nil {
				nf.Close()
				return err
			}
		}
		if f != nil {
			f.Close()
		}
		f = nf
		return nil
	}
	if err := open(!fromStart); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("follow console %s: %w", path, err)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 32<<10)
	for {
		if f != nil {
			for {
				n, err := f.Read(buf)
				if n > 0 {
					if _, werr := w.Write(buf[:n]); werr != nil {
						return fmt.Errorf("follow console %s: %w", path, werr)
					}
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					return fmt.Errorf("follow console %s: %w", path, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// A new file at path (rotation, or the first machine start).
		cur, err := os.Stat(path)
		if err != nil {
			continue
		}
		if f == nil {
			open(false)
			continue
		}
		if old, err := f.Stat(); err == nil && !os.SameFile(old, cur) {
			// Drain the rest of the old file before switching.
			io.CopyBuffer(w, f, buf)
			open(false)
		}
	}
}
