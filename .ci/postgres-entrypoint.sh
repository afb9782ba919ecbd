#!/bin/bash
# Entry point of tenantry-local/postgres (made by .ci/images.sh): the
# interface of the official postgres image, so that the test suite and
# docker-compose.yml run unchanged against either.
#
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default POSTGRES_USER),
#   POSTGRES_INITDB_ARGS, PGDATA (default /var/lib/postgresql/data),
#   /docker-entrypoint-initdb.d/*.sh and *.sql run once on a fresh data dir,
#   `postgres -c name=value ...` (or bare `-c ...`) passed through.
#
# Password authentication is required from every address outside the
# container (the official image's `host all all all scram-sha-256`): without
# that pg_hba line a client on the bridge network is refused outright.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
  exec "$@"
fi

export PGDATA=${PGDATA:-/var/lib/postgresql/data}

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 2777 /var/run/postgresql
  # Only a fresh or foreign-owned directory needs the walk.
  if [ "$(stat -c %U "$PGDATA")" != postgres ]; then
    chown -R postgres:postgres "$PGDATA"
  fi
  chown postgres:postgres /var/run/postgresql
  # setpriv execs in place (no fork), so postgres stays PID 1 and gets
  # docker stop's signal itself.
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

say() { printf 'entrypoint: %s\n' "$*" >&2; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    say "POSTGRES_PASSWORD is not set (set it, or POSTGRES_HOST_AUTH_METHOD=trust for a throwaway server)"
    exit 1
  fi

  say "initdb in $PGDATA (user $user, database $db)"
  pwargs=()
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    pwargs=(--pwfile="$pwfile")
  fi
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list by contract
  initdb -D "$PGDATA" --username="$user" "${pwargs[@]}" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host="$auth" \
    ${POSTGRES_INITDB_ARGS:-} >/dev/null
  [ -n "${pwfile:-}" ] && rm -f "$pwfile"
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

  # A socket-only server for the set-up, so no client can reach a half-made
  # database over TCP (compose's pg_isready -h 127.0.0.1 waits for the real one).
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -t 60 start >/dev/null
  export PGHOST=/var/run/postgresql PGPORT=5432 PGUSER=$user
  q=(psql -X -q -v ON_ERROR_STOP=1 --no-password)
  if [ "$db" != postgres ]; then
    "${q[@]}" --dbname=postgres -v db="$db" <<<'CREATE DATABASE :"db"'
  fi
  export PGDATABASE=$db
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        say "running $f"
        if [ -x "$f" ]; then "$f"; else . "$f"; fi
        ;;
      *.sql)
        say "running $f"
        "${q[@]}" -f "$f"
        ;;
      *) say "ignoring $f" ;;
    esac
  done
  unset PGHOST PGPORT PGUSER PGDATABASE
  pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  say "initdb done; starting postgres"
fi

exec "$@"
