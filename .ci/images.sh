#!/usr/bin/env bash
# Make the container images the project needs from Debian's packages alone,
# for machines that can reach a Debian mirror but no container registry:
#
#   tenantry-local/postgres:15          the official postgres:15 interface (see postgres-entrypoint.sh)
#   tenantry-local/golang:<go>-bookworm Debian bookworm + the Go release go.mod names
#   tenantry-local/static:nonroot       what distroless static nonroot holds: CA certificates,
#                                       tzdata, passwd/group with nonroot (65532), no shell
#
# The tags are local on purpose: nobody should take these for the official images.
# Idempotent: an image whose recipe label matches (recipe_version below, plus
# the entry point's hash or the Go release) is kept; `--force` rebuilds.
# Runs as root (debootstrap). The Debian mirror is the one this machine's apt
# sources name, read at run time; APT_MIRROR overrides it. DOCKER picks the
# client; it must build with BuildKit (Debian's docker.io client does).
#
# Prints the three image names, one per line, on stdout (logs go to stderr).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DOCKER=${DOCKER:-docker}
suite=bookworm
force=""
[ "${1:-}" = --force ] && force=1

say() { printf 'images: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
"$DOCKER" info >/dev/null 2>&1 || die "no Docker daemon answers ($DOCKER info failed)"

# go.mod's toolchain line when there is one, else its go line: the exact
# release the build image must carry.
go_version=$(awk '$1=="toolchain"{sub(/^go/,"",$2); print $2; exit}' go.mod)
[ -n "$go_version" ] || go_version=$(awk '$1=="go"{print $2; exit}' go.mod)
[[ "$go_version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
  die "go.mod names Go '$go_version'; want an exact release such as 1.26.8 (add a toolchain line)"

pg_image=tenantry-local/postgres:15
go_image=tenantry-local/golang:$go_version-$suite
static_image=tenantry-local/static:nonroot

# Bump recipe_version when a change to this script alters what an image
# holds; the images on a machine are then rebuilt on the next run.
recipe_version=1
label=tenantry.images.recipe
# Site-local CAs this machine trusts (Debian's place for them). The build
# image trusts them too: where outbound TLS goes through an inspecting
# proxy, `go mod download` in the Dockerfile needs its CA. The runtime
# image keeps Debian's bundle alone.
local_cas=(/usr/local/share/ca-certificates/*.crt)
[ -e "${local_cas[0]}" ] || local_cas=()
cas_hash=$(cat /dev/null "${local_cas[@]}" | sha256sum | cut -c1-8)
declare -A recipe=(
  [$pg_image]=v$recipe_version-$(sha256sum .ci/postgres-entrypoint.sh | cut -c1-12)
  [$go_image]=v$recipe_version-go$go_version-ca$cas_hash
  [$static_image]=v$recipe_version
)

# apt_mirror prints the first enabled `deb` source for $suite in the
# machine's apt configuration (one-line .list files, then deb822 .sources).
apt_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && enabled != "no" && uri != "") { print uri; found = 1 }
        types = suites = uri = enabled = ""
      }
      /^[ \t]*$/ { flush(); if (found) exit; next }
      /^#/ { next }
      tolower($1) == "types:"   { $1 = ""; types = $0 }
      tolower($1) == "suites:"  { $1 = ""; suites = $0 }
      tolower($1) == "uris:"    { uri = $2 }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { if (!found) flush() }' "$f"
  done
}

have() { # have IMAGE: it exists and was made by this recipe
  [ -z "$force" ] || return 1
  [ "$("$DOCKER" image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null)" = "${recipe[$1]}" ]
}

if have "$pg_image" && have "$go_image" && have "$static_image"; then
  say "all three images exist with this recipe; nothing to do"
  printf '%s\n' "$pg_image" "$go_image" "$static_image"
  exit 0
fi

mirror=${APT_MIRROR:-$(apt_mirror | head -n 1)}
[ -n "$mirror" ] || die "no apt source for $suite in /etc/apt/sources.list(.d); set APT_MIRROR to a Debian mirror"
say "Debian mirror (from apt sources): $mirror"

work=$(mktemp -d /var/tmp/tenantry-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

# bootstrap DIR PACKAGES: a minimal Debian with PACKAGES, without the
# package caches, documentation and manuals an image never reads.
bootstrap() {
  local dir=$1 include=$2 t0=$SECONDS
  say "debootstrap $suite into $dir (+ $include)"
  debootstrap --variant=minbase --include="$include" "$suite" "$dir" "$mirror" >"$dir.log" 2>&1 ||
    { tail -n 30 "$dir.log" >&2; die "debootstrap into $dir failed"; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/*
  say "debootstrap took $((SECONDS - t0)) s"
}

# import DIR IMAGE INSTRUCTION...: the directory as a one-layer image,
# configured by the Dockerfile instructions given. `docker import --change`
# refuses some (STOPSIGNAL), so a BuildKit build on the imported layer sets
# them all; it only writes configuration, so it takes no time.
import() {
  local dir=$1 image=$2 tmp=tenantry-local/rootfs:import-$$
  shift 2
  tar --numeric-owner -C "$dir" -c . | "$DOCKER" import - "$tmp" >/dev/null
  mkdir -p "$work/meta"
  { printf 'FROM %s\n' "$tmp"; printf '%s\n' "$@" "LABEL $label=${recipe[$image]}"; } >"$work/meta/Dockerfile"
  DOCKER_BUILDKIT=1 "$DOCKER" build -q -t "$image" "$work/meta" >/dev/null
  "$DOCKER" rmi "$tmp" >/dev/null
  say "made $image ($("$DOCKER" image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# The two trees are made at once: each debootstrap spends most of its time
# waiting for the mirror and for dpkg, so together they take little longer
# than one.
pids=()
if ! have "$pg_image"; then
  bootstrap "$work/postgres" postgresql-15 &
  pids+=($!)
fi
if ! have "$go_image" || ! have "$static_image"; then
  bootstrap "$work/base" ca-certificates,tzdata &
  pids+=($!)
fi
for p in "${pids[@]}"; do wait "$p" || die "debootstrap failed"; done

if ! have "$pg_image"; then
  root=$work/postgres
  # The package's post-install made a cluster of its own; the entry point
  # makes one in PGDATA on first start instead, as the official image does.
  rm -rf "$root"/var/lib/postgresql/15 "$root"/etc/postgresql/15
  install -m 755 .ci/postgres-entrypoint.sh "$root"/usr/local/bin/docker-entrypoint.sh
  mkdir -p "$root"/docker-entrypoint-initdb.d
  import "$root" "$pg_image" \
    'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV LANG=C.UTF-8' \
    'ENV PGDATA=/var/lib/postgresql/data' \
    'VOLUME /var/lib/postgresql/data' \
    'EXPOSE 5432' \
    'STOPSIGNAL SIGINT' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' \
    'CMD ["postgres"]'
  rm -rf "$root"
fi

if ! have "$go_image" || ! have "$static_image"; then
  root=$work/base

  if ! have "$static_image"; then
    s=$work/static
    mkdir -p "$s"/etc/ssl/certs "$s"/usr/share "$s"/tmp "$s"/home/nonroot "$s"/root
    cp -a "$root"/etc/ssl/certs/ca-certificates.crt "$s"/etc/ssl/certs/
    cp -a "$root"/usr/share/zoneinfo "$s"/usr/share/
    cp -a "$root"/etc/os-release "$s"/etc/ 2>/dev/null || cp -a "$root"/usr/lib/os-release "$s"/etc/os-release
    # The same users and groups as distroless: root, nobody, nonroot (65532).
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
      'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$s"/etc/passwd
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$s"/etc/group
    printf 'hosts: files dns\n' >"$s"/etc/nsswitch.conf
    chmod 1777 "$s"/tmp
    chmod 700 "$s"/root "$s"/home/nonroot
    chown 65532:65532 "$s"/home/nonroot
    import "$s" "$static_image" \
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      'USER 65532:65532' \
      'WORKDIR /home/nonroot'
  fi

  if ! have "$go_image"; then
    # The machine's toolchain when it is that release; otherwise the go
    # command fetches that release from the module proxy (GOTOOLCHAIN).
    goroot=$(GOTOOLCHAIN=go$go_version go env GOROOT)
    got=$("$goroot"/bin/go env GOVERSION)
    [ "$got" = "go$go_version" ] || die "toolchain at $goroot is $got, want go$go_version"
    say "Go $go_version from $goroot"
    mkdir -p "$root"/usr/local/go "$root"/go/bin "$root"/go/src
    cp -a "$goroot"/. "$root"/usr/local/go/
    chmod -R a+rX "$root"/usr/local/go
    if [ "${#local_cas[@]}" -gt 0 ]; then
      say "adding this machine's local CAs to the build image: ${local_cas[*]}"
      cp "${local_cas[@]}" "$root"/usr/local/share/ca-certificates/
      cat "${local_cas[@]}" >>"$root"/etc/ssl/certs/ca-certificates.crt
    fi
    chmod 1777 "$root"/go
    import "$root" "$go_image" \
      'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "ENV GOLANG_VERSION=$go_version" \
      'ENV GOPATH=/go' \
      'ENV GOTOOLCHAIN=local' \
      'WORKDIR /go' \
      'CMD ["bash"]'
  fi
fi

printf '%s\n' "$pg_image" "$go_image" "$static_image"
