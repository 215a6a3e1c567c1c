#!/usr/bin/env bash
# Builds the default vnode image from Debian packages: the distribution's
# kernel, and an initramfs holding static busybox, the virtio modules,
# walt-node and images/vnode/init. Root lives in RAM (network boot mode).
#
#   scripts/build-vnode-image.sh [--data DIR] [--kernel-package linux-image-X-amd64]
#
# Output: DIR/images/default/{vmlinuz,initramfs.cpio.gz,VERSION}, where DIR
# defaults to walt-server's data directory: /var/lib/walt for root,
# ${XDG_DATA_HOME:-$HOME/.local/share}/walt otherwise. Downloaded packages are
# cached in DIR/cache/debs. Needs apt-get, dpkg-deb and Go (1.26+); as root it
# runs apt-get update when a package cannot be downloaded.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then data=/var/lib/walt; else data=${XDG_DATA_HOME:-$HOME/.local/share}/walt; fi
kpkg=
while [ $# -gt 0 ]; do
	case "$1" in
	--data) data=$2; shift 2 ;;
	--data=*) data=${1#--data=}; shift ;;
	--kernel-package) kpkg=$2; shift 2 ;;
	--kernel-package=*) kpkg=${1#--kernel-package=}; shift ;;
	-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "build-vnode-image: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
done
export PATH=$PATH:/usr/local/go/bin
for t in apt-get apt-cache dpkg-deb go; do
	command -v "$t" >/dev/null || { echo "build-vnode-image: $t is needed" >&2; exit 1; }
done

# Virtio modules in load order (each needs the ones before it).
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net)

cache=$data/cache/debs
sandbox=
[ "$(id -u)" -ne 0 ] || sandbox="-o APT::Sandbox::User=root"
out=$data/images/default
# The data directory is walt-server's: private to its user (walt-server
# forces 0700 too). Made here when the image is built first.
[ -d "$data" ] || mkdir -p -m 0700 "$data"
mkdir -p "$cache" "$data/images"
work=$(mktemp -d "$data/images/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -z "$kpkg" ]; then
	kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
	[ -n "$kpkg" ] || { echo "build-vnode-image: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
fi

# fetch PACKAGE: prints the path of its .deb, downloading it into the cache.
fetch() {
	local deb
	deb=$(ls "$cache/$1"_*.deb 2>/dev/null | head -1 || true)
	if [ -z "$deb" ]; then
		if ! (cd "$cache" && apt-get download -qq $sandbox "$1" >&2); then
			[ "$(id -u)" -eq 0 ] || { echo "build-vnode-image: cannot download $1; run apt-get update" >&2; return 1; }
			apt-get update -qq >&2
			(cd "$cache" && apt-get download -qq $sandbox "$1" >&2)
		fi
		deb=$(ls "$cache/$1"_*.deb | head -1)
	fi
	echo "$deb"
}

echo "build-vnode-image: kernel $kpkg, busybox-static" >&2
dpkg-deb -x "$(fetch "$kpkg")" "$work/kernel"
dpkg-deb -x "$(fetch busybox-static)" "$work/busybox"
kver=${kpkg#linux-image-}
vmlinuz=$work/kernel/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || { echo "build-vnode-image: $kpkg holds no boot/vmlinuz-$kver" >&2; exit 1; }

root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,etc,lib/modules/"$kver"}
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
cp "$repo/images/vnode/init" "$root/init"
chmod 755 "$root/init" "$root/bin/busybox"
: >"$root/lib/modules/order"
for m in "${MODULES[@]}"; do
	ko=$(find "$work/kernel/lib/modules/$kver" -name "$m.ko*" | head -1)
	[ -n "$ko" ] || { echo "build-vnode-image: module $m not found in $kpkg" >&2; exit 1; }
	case "$ko" in
	*.ko) cp "$ko" "$root/lib/modules/$kver/$m.ko" ;;
	*.ko.xz) xz -dc "$ko" >"$root/lib/modules/$kver/$m.ko" ;;
	*.ko.zst) zstd -qdc "$ko" >"$root/lib/modules/$kver/$m.ko" ;;
	*) echo "build-vnode-image: cannot handle $ko" >&2; exit 1 ;;
	esac
	echo "$m" >>"$root/lib/modules/order"
done
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$root/bin/walt-node" ./cmd/walt-node)
echo "vnode" >"$root/etc/hostname"

mkdir -p "$work/out"
cp "$vmlinuz" "$work/out/vmlinuz"
(cd "$repo" && go run ./internal/vnode/mkinitramfs -o "$work/out/initramfs.cpio.gz" "$root")
{
	echo "kernel=$kpkg"
	echo "busybox=$(basename "$(fetch busybox-static)" .deb)"
	echo "walt=$(cd "$repo" && git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$work/out/VERSION"

rm -rf "$out.old"
[ -d "$out" ] && mv "$out" "$out.old"
mv "$work/out" "$out"
rm -rf "$out.old"
echo "build-vnode-image: $out ($(du -sh "$out" | cut -f1))" >&2
