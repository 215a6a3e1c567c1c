// Command mkinitramfs writes a directory tree as a gzip-compressed newc cpio
// archive with /dev/console, for scripts/build-vnode-image.sh:
//
//	go run ./internal/vnode/mkinitramfs -o initramfs.cpio.gz DIR
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/walt-testbed/walt/internal/vnode"
)

func main() {
	out := flag.String("o", "", "output file")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkinitramfs -o OUT.cpio.gz DIR")
		os.Exit(2)
	}
	if err := run(*out, flag.Arg(0)); err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
}

func run(out, dir string) error {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := vnode.WriteInitramfs(f, dir); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}
