package vnode

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WriteInitramfs writes the tree under root to w as a gzip-compressed cpio
// archive in the "newc" format the Linux kernel unpacks. Every entry is owned
// by root; modes and symbolic links are kept. The archive also holds /dev and
// the /dev/console character device (5, 1), without which init has no
// output; creating it needs no privilege, unlike mknod in a directory.
func WriteInitramfs(w io.Writer, root string) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	cw := &cpioWriter{w: zw, ino: 1}
	seen := map[string]bool{}
	var paths []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		return fmt.Errorf("write initramfs from %s: %w", root, err)
	}
	sort.Strings(paths)
	for _, rel := range paths {
		p := filepath.Join(root, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
		name := filepath.ToSlash(rel)
		seen[name] = true
		mode := uint32(fi.Mode().Perm())
		switch {
		case fi.IsDir():
			err = cw.entry(name, 0o040000|mode, 0, 0, nil)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, lerr := os.Readlink(p)
			if lerr != nil {
				return fmt.Errorf("write initramfs: %w", lerr)
			}
			err = cw.entry(name, 0o120000|0o777, 0, 0, []byte(target))
		case fi.Mode().IsRegular():
			data, rerr := os.ReadFile(p)
			if rerr != nil {
				return fmt.Errorf("write initramfs: %w", rerr)
			}
			err = cw.entry(name, 0o100000|mode, 0, 0, data)
		default:
			return fmt.Errorf("write initramfs: %s: unsupported file type %v", p, fi.Mode().Type())
		}
		if err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
	}
	if !seen["dev"] {
		if err := cw.entry("dev", 0o040755, 0, 0, nil); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
	}
	if !seen["dev/console"] {
		if err := cw.entry("dev/console", 0o020600, 5, 1, nil); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
	}
	if err := cw.entry("TRAILER!!!", 0, 0, 0, nil); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

type cpioWriter struct {
	w   io.Writer
	ino uint32
	off int64
}

// entry writes one newc header, the name and the data, each padded to 4 bytes.
func (c *cpioWriter) entry(name string, mode, rmajor, rminor uint32, data []byte) error {
	name = strings.TrimPrefix(name, "/")
	nlink := uint32(1)
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	ino := c.ino
	c.ino++
	if name == "TRAILER!!!" {
		ino, nlink = 0, 1
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	if err := c.write([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.off += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.off % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}
