#!/usr/bin/env bash
# Builds walt's Debian packages, walt-server, walt (the CLI) and walt-node,
# from this work tree (docs/packaging.md).
#
#   scripts/package.sh [--out DIR] [--version VERSION]    -> DIR/*.deb (default dist/)
#   scripts/package.sh --check                            (as root; CI runs it)
#
# VERSION defaults to one derived from git: X.Y.Z at a tag vX.Y.Z,
# X.Y.Z+git<date>.<commit> after one, 0.1.0~git<date>.<commit> without
# tags (".dirty" added for uncommitted changes). The architecture is
# dpkg's. WALT_MAINTAINER overrides the Maintainer field.
#
# --check builds the packages into a temporary directory, runs lintian
# (errors fail, warnings are shown), installs them with dpkg -i, checks
# their units with systemd-analyze verify and that the installed binaries
# run, then purges them and removes the user and groups the check created.
# It refuses to run where any of the packages is already installed.
set -euo pipefail
umask 022 # the packages' directories get 0755 whatever the caller's umask

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH=$PATH:/usr/local/go/bin
PACKAGES=(walt-server walt walt-node)
# Where package walt holds the completion file of each shell.
declare -A COMPLETION=([bash]=usr/share/bash-completion/completions/walt [zsh]=usr/share/zsh/vendor-completions/_walt [fish]=usr/share/fish/vendor_completions.d/walt.fish)

out=$repo/dist
version=
check=false
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2 ;;
	--out=*) out=${1#--out=}; shift ;;
	--version) version=$2; shift 2 ;;
	--version=*) version=${1#--version=}; shift ;;
	--check) check=true; shift ;;
	-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "package: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
done

die() { echo "package: $*" >&2; exit 1; }
for t in dpkg dpkg-deb go git gzip md5sum; do
	command -v "$t" >/dev/null || die "$t is needed"
done

arch=$(dpkg --print-architecture)
case "$arch" in
amd64|arm64|riscv64|s390x) goarch=$arch ;;
ppc64el) goarch=ppc64le ;;
i386) goarch=386 ;;
armhf) goarch=arm; export GOARM=7 ;;
*) die "architecture $arch: no Go port known to this script" ;;
esac
export GOOS=linux GOARCH=$goarch CGO_ENABLED=0

# Version and date come from the commit, so that a rebuild of the same
# commit gives the same packages.
commit=$(git rev-parse --short=12 HEAD)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
if [ -z "$version" ]; then
	date=$(git log -1 --format=%cd --date=format:%Y%m%d)
	tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null || true)
	if [ -z "$tag" ]; then
		version=0.1.0~git$date.$commit
	elif [ "$(git rev-list -n1 "$tag")" = "$(git rev-parse HEAD)" ]; then
		version=${tag#v}
	else
		version=${tag#v}+git$date.$commit
	fi
	git diff --quiet HEAD 2>/dev/null || version=$version.dirty
fi
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "--version $version: a Debian version starts with a digit and holds only letters, digits and . + ~ -"
maintainer=${WALT_MAINTAINER:-walt maintainers <maintainers@walt-testbed.example>}

# ---- building ----

# build_binaries DIR: the three commands, static (no cgo), without file
# system paths or symbol tables, with the package's version as the one
# --version prints.
build_binaries() {
	local c
	for c in walt-server walt walt-node; do
		go build -trimpath -buildvcs=false -ldflags="-s -w -buildid= -X github.com/walt-testbed/walt/internal/version.stamp=$version" -o "$1/$c" "./cmd/$c"
	done
	# walt-node runs in node images, often without a C library.
	if ldd "$1/walt-node" >/dev/null 2>&1; then
		die "walt-node is dynamically linked; it must be static"
	fi
}

# copyright PACKAGE BINARY: the DEB-822 copyright file of a package whose
# binary links BINARY's Go modules, each with its licence texts.
copyright() {
	local modcache goroot path ver dir f lines
	modcache=$(go env GOMODCACHE)
	goroot=$(go env GOROOT)
	cat <<-EOF
	Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
	Upstream-Name: walt
	Upstream-Contact: $maintainer
	Source: https://github.com/walt-testbed/walt
	Comment: $1 is a Go program, built from walt's source at commit $commit
	 together with the Go standard library and the Go modules listed below,
	 which are linked into its binary. Their Files fields name them as Go
	 module paths.

	Files: *
	Copyright: the walt authors
	License: walt-no-licence-yet
	 The walt repository holds no licence file: its authors have not yet
	 said under which licence walt is distributed. Until they do, ask them
	 before redistributing it.

	Files: go/std/*
	Copyright: The Go Authors
	License: BSD-3-clause
	EOF
	sed 's/^$/./; s/^/ /' "$goroot/LICENSE"
	go version -m "$2" | awk '$1 == "dep" {print $2, $3}' | while read -r path ver; do
		# The module cache spells capitals as !lower case.
		# shellcheck disable=SC2001 # \L needs sed
		dir=$modcache/$(echo "$path" | sed 's/[A-Z]/!\L&/g')@$ver
		echo
		echo "Files: $path@$ver/*"
		# The copyright lines of its licence files, or the module's name.
		lines=$(cat "$dir"/LICENSE* "$dir"/COPYING* 2>/dev/null | grep -i '^ *copyright.*[0-9]' | sed 's/^ *copyright *\(([c])\|©\)\{0,1\} *//I' | sort -u || true)
		if [ -n "$lines" ]; then
			echo "$lines" | sed '1s/^/Copyright: /; 2,$s/^/ /'
		else
			echo "Copyright: the authors of $path"
		fi
		echo "License: other"
		echo " The licence files of $path $ver, as published with it:"
		for f in "$dir"/LICENSE* "$dir"/COPYING*; do
			[ -f "$f" ] || continue
			echo " ."
			echo " ==> ${f##*/} <=="
			# Debian systems hold the Apache License 2.0 in
			# common-licenses, where a copyright file refers to it.
			awk '/Version 2.0, January 2004/ { print; print "[terms and conditions: /usr/share/common-licenses/Apache-2.0]"; skip = 1; next }
				skip && /END OF TERMS AND CONDITIONS/ { skip = 0; next }
				!skip' "$f" | sed 's/^[[:space:]]*$/./; s/^/ /'
		done
	done
}

# changelog PACKAGE: the changelog of one build.
changelog() {
	cat <<-EOF
	$1 ($version) unstable; urgency=medium

	  * Built by scripts/package.sh from git commit $commit.

	 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
	EOF
}

# manpage COMMAND SECTION SUMMARY BIN: a manual page of COMMAND made of
# its --help text, which BIN prints.
manpage() {
	cat <<-EOF
	.TH ${1^^} $2 "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" "walt $version" "WalT testbed"
	.SH NAME
	$1 \- $3
	.SH SYNOPSIS
	.B $1
	[\fIflags\fR]
	.SH OPTIONS
	The text of \fB$1 --help\fR:
	.PP
	.nf
	EOF
	"$4" --help 2>&1 | sed 's/\\/\\e/g; s/^[.'"'"']/\\\&&/'
	cat <<-EOF
	.fi
	.SH SEE ALSO
	https://github.com/walt-testbed/walt/tree/main/docs
	EOF
}

# subst FILE UNIT [ENABLE_IF]: FILE with the unit's maintainer-script
# fragments in place of #SYSTEMD#.
subst() {
	local fragment=$repo/packaging/systemd.${1##*/}
	if [ -n "${2:-}" ] && [ -f "$fragment" ]; then
		awk -v frag="$fragment" '$0 == "#SYSTEMD#" { while ((getline l < frag) > 0) print l; next } { print }' "$1" |
			sed "s|@UNIT@|$2|g; s|@ENABLE_IF@|${3:-true}|g"
	else
		cat "$1"
	fi
}

# stage PACKAGE ROOT BIN: the tree of PACKAGE under ROOT, BIN holding the
# built binaries.
stage() {
	local pkg=$1 root=$2 bin=$3 src=$repo/packaging/$1 doc=$2/usr/share/doc/$1 unit="" enable_if=true sh f
	install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$doc"
	install -m 0755 "$bin/$pkg" "$root/usr/bin/$pkg"
	local section=8 summary
	case "$pkg" in
	walt-server) summary="WalT testbed server: node inventory and reboots" ;;
	walt) section=1 summary="command line tool of the WalT testbed" ;;
	walt-node) summary="WalT node agent, and the kexec reboot hook of node images" ;;
	esac
	install -d -m 0755 "$root/usr/share/man/man$section"
	manpage "$pkg" "$section" "$summary" "$bin/$pkg" | gzip -9n >"$root/usr/share/man/man$section/$pkg.$section.gz"
	chmod 0644 "$root/usr/share/man/man$section/$pkg.$section.gz"
	case "$pkg" in
	walt-server)
		unit=walt-server.service
		install -D -m 0644 "$src/default" "$root/etc/default/walt-server"
		# Every setting commented out at its default, written by the
		# server from its own flags (docs/packaging.md).
		install -d -m 0755 "$root/etc/walt"
		"$bin/walt-server" --print-config >"$root/etc/walt/server.conf"
		chmod 0644 "$root/etc/walt/server.conf"
		;;
	walt-node)
		unit=walt-node.service
		# shellcheck disable=SC2016 # expanded by the postinst
		enable_if='[ -e "${DPKG_ROOT:-}/etc/walt/node-image" ]'
		install -D -m 0644 "$src/node.conf" "$root/etc/walt/node.conf"
		# The kexec reboot hook: walt-node started under these names
		# (docs/node-agent.md). /bin, where the agent looks them up.
		install -d -m 0755 "$root/bin"
		ln -s /usr/bin/walt-node "$root/bin/walt-network-reboot"
		ln -s /usr/bin/walt-node "$root/bin/walt-hybrid-reboot"
		ln -s walt-node.8.gz "$root/usr/share/man/man8/walt-network-reboot.8.gz"
		ln -s walt-node.8.gz "$root/usr/share/man/man8/walt-hybrid-reboot.8.gz"
		;;
	walt)
		# Completion files, from the CLI itself when it can write them.
		for sh in bash zsh fish; do
			if "$bin/walt" completion "$sh" >"$root/completion" 2>/dev/null && [ -s "$root/completion" ]; then
				install -D -m 0644 "$root/completion" "$root/${COMPLETION[$sh]}"
			else
				echo "package: walt completion $sh: not supported by this walt; the package has no $sh completion file" >&2
			fi
			rm -f "$root/completion"
		done
		;;
	esac
	if [ -n "$unit" ]; then
		install -D -m 0644 "$src/$unit" "$root/lib/systemd/system/$unit"
	fi
	for f in postinst prerm postrm; do
		[ -f "$src/$f" ] || continue
		subst "$src/$f" "$unit" "$enable_if" >"$root/DEBIAN/$f"
		chmod 0755 "$root/DEBIAN/$f"
	done
	[ ! -f "$src/conffiles" ] || install -m 0644 "$src/conffiles" "$root/DEBIAN/conffiles"
	copyright "$pkg" "$bin/$pkg" >"$doc/copyright"
	# A native package (its version has no Debian revision: the packaging
	# is walt's own), hence changelog.gz rather than changelog.Debian.gz.
	changelog "$pkg" | gzip -9n >"$doc/changelog.gz"
	# Go programs are statically linked (walt-node must be: node images may
	# have no C library); lintian knows it only of Debian's golang-* builds.
	install -d -m 0755 "$root/usr/share/lintian/overrides"
	{
		echo "# Go programs are statically linked; walt-node must be (node images may have no C library)."
		echo "$pkg: statically-linked-binary [usr/bin/$pkg]"
	} >"$root/usr/share/lintian/overrides/$pkg"
	chmod 0644 "$doc/copyright" "$doc/changelog.gz" "$root/usr/share/lintian/overrides/$pkg"
	(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
	chmod 0644 "$root/DEBIAN/md5sums"
	local size
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	sed "s|@VERSION@|$version|; s|@ARCH@|$arch|; s|@MAINTAINER@|$maintainer|; s|@INSTALLED_SIZE@|$size|" "$src/control" >"$root/DEBIAN/control"
	find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# build_all DIR: the three .debs into DIR; prints their paths.
build_all() {
	local pkg deb
	mkdir -p "$1" "$work/bin"
	build_binaries "$work/bin"
	for pkg in "${PACKAGES[@]}"; do
		stage "$pkg" "$work/$pkg" "$work/bin"
		deb=$1/${pkg}_${version}_$arch.deb
		dpkg-deb --root-owner-group -Zxz --build "$work/$pkg" "$deb" >/dev/null
		echo "$deb"
	done
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! $check; then
	build_all "$out"
	exit 0
fi

# ---- checking ----

[ "$(id -u)" -eq 0 ] || die "--check installs the packages: run it as root"
for t in lintian systemd-analyze; do
	command -v "$t" >/dev/null || die "--check needs $t (scripts/install-deps.sh installs it)"
done
for pkg in "${PACKAGES[@]}"; do
	if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$'; then
		die "--check: $pkg is installed on this machine already; it would be purged: remove it first"
	fi
done

# What installing creates and purging leaves, put back as it was.
had_user=false had_walt_group=false had_kvm_group=false
getent passwd walt >/dev/null && had_user=true
getent group walt >/dev/null && had_walt_group=true
getent group kvm >/dev/null && had_kvm_group=true
tmp=$work/check
mkdir "$tmp"
restore() {
	dpkg --purge "${PACKAGES[@]}" >/dev/null 2>&1 || true
	$had_user || ! getent passwd walt >/dev/null || deluser --quiet --system walt >/dev/null 2>&1 || true
	$had_walt_group || ! getent group walt >/dev/null || delgroup --quiet --system walt >/dev/null 2>&1 || true
	$had_kvm_group || ! getent group kvm >/dev/null || delgroup --quiet --system kvm >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap restore EXIT
trap 'exit 130' INT TERM

echo "package: building version $version for $arch"
build_all "$tmp/dist" >"$tmp/debs"
mapfile -t debs <"$tmp/debs"

echo "package: lintian (errors fail; warnings shown)"
# lintian warns when run as root; its checks are the same.
status=0
lintian --fail-on error "${debs[@]}" >"$tmp/lintian" 2>&1 || status=$?
grep -v '^running with root privileges' "$tmp/lintian" | sed 's/^/  /' || echo "  (no tags)"
[ "$status" -eq 0 ] || die "lintian reported errors (status $status)"

fail() { echo "package: check failed: $*" >&2; exit 1; }

# enabled_by_postinst DEB ROOT: whether DEB's postinst, run for a first
# installation with DPKG_ROOT=ROOT and stand-ins for deb-systemd-helper,
# deb-systemd-invoke and systemctl, enables a unit.
enabled_by_postinst() {
	local d=$tmp/postinst t
	rm -rf "$d" && mkdir -p "$d/bin"
	dpkg-deb -e "$1" "$d/control"
	for t in deb-systemd-helper deb-systemd-invoke systemctl; do
		printf '#!/bin/sh\necho "%s $*" >>%s/calls\n' "$t" "$d" >"$d/bin/$t"
		chmod +x "$d/bin/$t"
	done
	PATH=$d/bin:$PATH DPKG_ROOT=$2 sh "$d/control/postinst" configure "" || fail "$1: postinst configure failed"
	grep -q '^deb-systemd-helper enable ' "$d/calls"
}
echo "package: walt-node's postinst enables its unit only in a node image"
node_deb=$(grep /walt-node_ "$tmp/debs")
mkdir -p "$tmp/image/etc/walt"
! enabled_by_postinst "$node_deb" "$tmp/image" || fail "walt-node.service enabled without /etc/walt/node-image"
touch "$tmp/image/etc/walt/node-image"
enabled_by_postinst "$node_deb" "$tmp/image" || fail "walt-node.service not enabled in a node image (with /etc/walt/node-image)"

echo "package: dpkg -i"
dpkg -i "${debs[@]}" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; die "dpkg -i failed"; }

echo "package: systemd-analyze verify"
# Any message fails too: verify only warns of unknown keys, such as a
# misspelt hardening setting, which systemd would ignore.
if ! systemd-analyze verify /lib/systemd/system/walt-server.service /lib/systemd/system/walt-node.service >"$tmp/verify" 2>&1 || [ -s "$tmp/verify" ]; then
	cat "$tmp/verify" >&2
	fail "systemd-analyze verify"
fi
# walt-server's sandbox, scored by systemd (0 to 10, lower is safer; 1.8
# when written): a change that weakens it much fails.
systemd-analyze security --offline=true --threshold=25 /lib/systemd/system/walt-server.service >"$tmp/security" 2>&1 ||
	{ cat "$tmp/security" >&2; fail "walt-server.service: exposure above 2.5 (systemd-analyze security)"; }
echo "  $(grep 'Overall exposure' "$tmp/security")"

for b in walt-server walt walt-node; do
	/usr/bin/$b --help >"$tmp/help" 2>&1 || { cat "$tmp/help" >&2; fail "/usr/bin/$b --help"; }
	# --version says the package's version, stamped at link time.
	got=$(/usr/bin/$b --version 2>&1) || fail "/usr/bin/$b --version: $got"
	[ "$got" = "$b $version" ] || fail "/usr/bin/$b --version says '$got', want '$b $version'"
done
# The hook link is walt-node under another name: run by hand, outside a
# reboot procedure (no walt_* variables), it refuses with status 2.
status=0
env -i PATH=/usr/bin:/bin /bin/walt-network-reboot >"$tmp/hook" 2>&1 || status=$?
[ "$status" -eq 2 ] || { cat "$tmp/hook" >&2; fail "/bin/walt-network-reboot by hand: status $status, want 2 (walt-node's kexec hook refusing)"; }
# Completion files exactly for the shells the installed CLI writes them for.
for sh in bash zsh fish; do
	has=false present=false
	[ -n "$(/usr/bin/walt completion "$sh" 2>/dev/null)" ] && has=true
	[ -f "/${COMPLETION[$sh]}" ] && present=true
	[ "$has" = "$present" ] || fail "walt: $sh completion file installed: $present; walt completion $sh works: $has"
done
# The shipped configuration file: a conffile, what the installed server
# writes, and read by it (the bad --fanout is refused after the file is).
dpkg-query -W -f='${Conffiles}\n' walt-server | grep -q '^ /etc/walt/server.conf ' || fail "/etc/walt/server.conf is not a conffile of walt-server"
/usr/bin/walt-server --print-config | cmp -s - /etc/walt/server.conf || fail "/etc/walt/server.conf differs from walt-server --print-config"
got=$(env -i PATH=/usr/bin:/bin /usr/bin/walt-server --config /etc/walt/server.conf --fanout 0 2>&1) && fail "walt-server --fanout 0 started"
[ "$got" = "walt-server: --fanout: must be between 1 and 1048576 (got 0)" ] || fail "walt-server with /etc/walt/server.conf: $got"
getent passwd walt >/dev/null || fail "no user walt after installing walt-server"
getent group kvm >/dev/null || fail "no group kvm after installing walt-server"
wants=/etc/systemd/system/multi-user.target.wants
[ -L "$wants/walt-server.service" ] || fail "walt-server.service not enabled"
[ ! -e "$wants/walt-node.service" ] || fail "walt-node.service enabled on a machine that is not a node image"
echo "package: installed: units verified, binaries run, walt-server enabled, walt-node not"

dpkg --purge "${PACKAGES[@]}" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg --purge"; }
left=$(find /etc/walt /etc/default/walt-server /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
	/var/lib/systemd/deb-systemd-helper-masked /lib/systemd/system /bin/walt-network-reboot /bin/walt-hybrid-reboot \
	-name '*walt*' 2>/dev/null || true)
[ -z "$left" ] || fail "left after dpkg --purge: $left"
echo "package: ok (${#debs[@]} packages built, installed and purged)"
