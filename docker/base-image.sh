#!/usr/bin/env bash
# Make the Debian 12 base images the Dockerfile starts from, locally, when no
# image registry is reachable: debootstrap --variant=minbase bookworm from
# this machine's own apt mirror (read from its apt sources at run time), then
# `tar | podman import` tagged docker.io/library/debian:12 and :12-slim.
#
# Idempotent and cheap when the images exist (nothing is downloaded then);
# concurrent callers serialise on a lock. Needs root (debootstrap).
# Usage: docker/base-image.sh [--force]     env: PODMAN (default podman),
# CONTAINERS_CONF (passed through to podman), MCP_DEBIAN_MIRROR (override).
set -euo pipefail

podman=${PODMAN:-podman}
full=docker.io/library/debian:12
slim=docker.io/library/debian:12-slim
force=0
[ "${1:-}" = "--force" ] && force=1

say() { echo "base-image: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

have_images() {
	"$podman" image exists "$full" && "$podman" image exists "$slim"
}

# The first apt source (type deb) carrying suite bookworm, from
# /etc/apt/sources.list (one-line format) and /etc/apt/sources.list.d/*
# (.list one-line and .sources deb822 format). Prints the URI.
find_mirror() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [opts] URI suite components...
		awk '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) == "bookworm") { print $i; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822 stanzas are separated by blank lines; keys are case-insensitive.
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uris = ""; suites = ""; enabled = "yes"
			for (n = 1; n <= NF; n++) {
				line = $n
				if (line ~ /^#/) continue
				k = tolower(line); sub(/:.*/, "", k)
				v = line; sub(/^[^:]*:[ \t]*/, "", v)
				if (k == "types") types = v
				else if (k == "uris") uris = v
				else if (k == "suites") suites = v
				else if (k == "enabled") enabled = tolower(v)
			}
			if (enabled == "no" || (" " types " ") !~ / deb /) next
			if ((" " suites " ") ~ / bookworm /) { split(uris, u, /[ \t]+/); print u[1]; exit }
		}' "$f"
	done
}

command -v "$podman" >/dev/null 2>&1 || die "$podman is not installed (scripts/install-deps.sh --container installs podman runc debootstrap)"

if [ "$force" = 0 ] && have_images; then
	say "$full and $slim exist (cached)"
	exit 0
fi

command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (scripts/install-deps.sh --container installs it)"
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"

lockdir=${XDG_RUNTIME_DIR:-/tmp}
exec 9>"$lockdir/mcp-proxy-runner-base-image.lock"
if ! flock -n 9; then
	say "another run is making the base image; waiting for it"
	flock 9
fi
if [ "$force" = 0 ] && have_images; then
	say "$full and $slim exist (made by a concurrent run)"
	exit 0
fi

mirror=${MCP_DEBIAN_MIRROR:-$(find_mirror | head -n1)}
[ -n "$mirror" ] || die "no apt source with suite 'bookworm' in /etc/apt/sources.list or /etc/apt/sources.list.d/; set MCP_DEBIAN_MIRROR"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/mcp-debian-base.XXXXXX")
cleanup() {
	# debootstrap unmounts what it mounted; be sure before deleting.
	local m
	for m in proc sys dev/pts dev; do
		if mountpoint -q "$work/rootfs/$m" 2>/dev/null; then umount -l "$work/rootfs/$m" || true; fi
	done
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

extra=()
case "$mirror" in https:*) extra+=(--include=ca-certificates) ;; esac

say "debootstrap --variant=minbase bookworm from the host's apt mirror (takes 1-3 minutes)"
start=$SECONDS
if ! debootstrap --variant=minbase "${extra[@]}" bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
	tail -n 30 "$work/debootstrap.log" >&2
	[ -f "$work/rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$work/rootfs/debootstrap/debootstrap.log" >&2
	die "debootstrap failed (log above)"
fi
say "debootstrap done in $((SECONDS - start))s"

r=${work:?}/rootfs
rm -rf "${r:?}"/var/cache/apt/archives/*.deb "${r:?}"/var/lib/apt/lists/* "${r:?}"/var/log/*.log \
	"${r:?}"/var/log/apt/* "${r:?}"/tmp/* "${r:?}"/debootstrap
# Device nodes, /proc and /sys come from the runtime, not from the image.
rm -rf --one-file-system "${r:?}"/dev/* 2>/dev/null || true
# podman provides /etc/hosts, /etc/hostname and /etc/resolv.conf at run time.

changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	--change 'CMD ["bash"]')

say "importing $full"
tar -C "$r" --numeric-owner -cf - . | "$podman" import --quiet "${changes[@]}" - "$full" >/dev/null

# -slim as Debian builds it: no docs, man pages or translations, and dpkg
# told not to install them later.
cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# as in Debian's -slim images: no documentation in the image
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "${r:?}"/usr/share/man/* "${r:?}"/usr/share/groff/* "${r:?}"/usr/share/info/* \
	"${r:?}"/usr/share/lintian/* "${r:?}"/usr/share/linda/*
find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +

say "importing $slim"
tar -C "$r" --numeric-owner -cf - . | "$podman" import --quiet "${changes[@]}" - "$slim" >/dev/null
say "base images ready in $((SECONDS - start))s"
