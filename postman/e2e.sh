#!/usr/bin/env bash
# make e2e: run the Postman collection with newman against a real tenantry.
#
# Builds the binary, gets a PostgreSQL (a fresh database in TEST_DATABASE_URL
# when set, else a throwaway cluster made with the machine's initdb/postgres
# in a temp dir), starts `tenantry serve` on a free loopback port with a
# random JWT secret, onboards two tenants with the CLI, mints their tokens and
# an admin token with `tenantry token`, and runs the collection. newman's
# exit status is the script's: any failed assertion fails the run. The
# server, the cluster, the database made in TEST_DATABASE_URL and the temp
# dir are removed on every exit path.
#
# Outputs: out/newman.xml (JUnit) and out/e2e-server.log (the server's log).
# Knobs: TEST_DATABASE_URL, GO (go tool), PG_BINDIR (initdb/postgres/psql).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tenant_a=acme
tenant_b=globex
collection=postman/tenantry.postman_collection.json
environment=postman/local.postman_environment.json

say() { printf 'e2e: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- state the cleanup needs --------------------------------------------------
work=""          # temp dir: binary, cluster
server_pid=""    # tenantry serve
pg_data=""       # the throwaway cluster's data dir, once initdb ran
db_admin_url=""  # where to drop the fresh database (TEST_DATABASE_URL case)
db_name=""
roles_made=""    # set once the database's two login roles exist

# as_pg runs a command as the owner of the throwaway cluster: the postgres
# user when we are root (initdb and postgres refuse to run as root), else us.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
  fi
  [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null
  if [ -n "$db_admin_url" ] && [ -n "$db_name" ]; then
    # Roles are server-wide: the derived ones are named after the
    # deployment id stored in the database, so read it before the drop.
    dep=$("$psql" -X -q -At -d "$(with_db "$db_admin_url" "$db_name")" \
      -c "SELECT id FROM tenantry.deployment" 2>/dev/null || true)
    "$psql" -X -q -v ON_ERROR_STOP=1 -d "$db_admin_url" \
      -c "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" >/dev/null 2>&1 ||
      say "could not drop database $db_name"
    if [ -n "$roles_made" ]; then
      { [ -n "$dep" ] && printf "SELECT format('DROP ROLE %%I', rolname) FROM pg_roles WHERE starts_with(rolname, 'tr%s_')\\gexec\n" "$dep"
        printf 'DROP ROLE IF EXISTS "%s_ddl", "%s_app";\n' "$db_name" "$db_name"
      } | "$psql" -X -q -d "$db_admin_url" >/dev/null 2>&1 || say "could not drop the roles of $db_name"
    fi
  fi
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_pg "$pg_ctl" stop -D "$pg_data" -m fast -w -t 30 >/dev/null 2>&1
    # pg_ctl failing (or missing) must not leave a postmaster behind.
    if [ -f "$pg_data/postmaster.pid" ]; then
      local pm
      pm=$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null)
      if [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null; then
        kill -QUIT "$pm" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$pm" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pm" 2>/dev/null
      fi
    fi
  fi
  [ -n "$work" ] && rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools --------------------------------------------------------------------
GO=${GO:-go}
command -v "$GO" >/dev/null || die "go is not on PATH"
command -v node >/dev/null || die "node is not on PATH (newman needs Node.js >= 16)"
command -v npm >/dev/null || die "npm is not on PATH"

if [ -z "${PG_BINDIR:-}" ]; then
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    PG_BINDIR=$(pg_config --bindir)
  else
    PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  fi
fi
psql="${PG_BINDIR:+$PG_BINDIR/}psql"
pg_ctl="${PG_BINDIR:+$PG_BINDIR/}pg_ctl"
command -v "$psql" >/dev/null || die "psql not found (set PG_BINDIR, or install postgresql)"

# with_db prints URL $1 pointed at database $2; with_user, at user $2 with password $3.
with_db() { node -e 'const u=new URL(process.argv[1]);u.pathname="/"+process.argv[2];console.log(u.toString())' "$1" "$2"; }
with_user() { node -e 'const u=new URL(process.argv[1]);u.username=process.argv[2];u.password=process.argv[3];console.log(u.toString())' "$1" "$2" "$3"; }

# free_port prints a loopback TCP port nobody listens on right now.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

work=$(mktemp -d "${TMPDIR:-/tmp}/tenantry-e2e.XXXXXX")
chmod 755 "$work" # the postgres user must reach the cluster dir inside
mkdir -p out

# --- newman (pinned in postman/package.json) ----------------------------------
want=$(node -p 'require("./postman/package.json").dependencies.newman')
have=$(node -p 'try{require("./postman/node_modules/newman/package.json").version}catch(e){""}')
if [ "$have" != "$want" ]; then
  say "installing newman $want (npm ci --prefix postman)"
  npm ci --prefix postman --no-audit --no-fund --loglevel=error >&2
fi

# --- binary -------------------------------------------------------------------
say "building tenantry"
CGO_ENABLED=0 "$GO" build -trimpath -o "$work/tenantry" .
bin="$work/tenantry"

# --- PostgreSQL ---------------------------------------------------------------
db_name="tenantry_e2e_$(date +%s)_$$"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  say "using TEST_DATABASE_URL; creating database $db_name"
  "$psql" -X -q -v ON_ERROR_STOP=1 -d "$TEST_DATABASE_URL" -c "CREATE DATABASE \"$db_name\"" >/dev/null
  db_admin_url=$TEST_DATABASE_URL
  database_url=$(with_db "$TEST_DATABASE_URL" "$db_name")
else
  [ -x "$PG_BINDIR/initdb" ] && [ -x "$PG_BINDIR/postgres" ] ||
    die "no PostgreSQL server binaries (install postgresql, set PG_BINDIR, or set TEST_DATABASE_URL)"
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    die "running as root needs a 'postgres' user to own the throwaway cluster (useradd --system postgres)"
  fi
  mkdir "$work/pg"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$work/pg"; fi
  say "initdb in $work/pg"
  as_pg "$PG_BINDIR/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 ||
    { cat "$work/initdb.log" >&2; die "initdb failed"; }
  pg_data=$work/pg/data
  started=""
  for _ in 1 2 3 4 5; do
    pg_port=$(free_port)
    if as_pg "$pg_ctl" start -D "$pg_data" -w -t 60 -l "$work/pg/postgres.log" \
      -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off" >/dev/null 2>&1; then
      started=1
      break
    fi
    say "postgres did not start on port $pg_port; retrying"
  done
  [ -n "$started" ] || { tail -n 20 "$work/pg/postgres.log" >&2; die "could not start postgres"; }
  say "postgres on 127.0.0.1:$pg_port"
  "$psql" -X -q -v ON_ERROR_STOP=1 -d "postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable" \
    -c "CREATE DATABASE \"$db_name\"" >/dev/null
  db_admin_url="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
  database_url="postgres://postgres@127.0.0.1:$pg_port/$db_name?sslmode=disable"
fi

# --- roles (SECURITY.md's strict setup) ---------------------------------------
# The DDL role owns the database and may create the tenants' roles; the
# request role is NOINHERIT and owns nothing. serve refuses anything laxer.
role_pw=$(node -p 'require("crypto").randomBytes(18).toString("hex")')
"$psql" -X -q -v ON_ERROR_STOP=1 -d "$db_admin_url" >/dev/null <<SQL
CREATE ROLE "${db_name}_ddl" LOGIN CREATEROLE PASSWORD '$role_pw';
CREATE ROLE "${db_name}_app" LOGIN NOINHERIT PASSWORD '$role_pw';
ALTER DATABASE "$db_name" OWNER TO "${db_name}_ddl";
SQL
roles_made=1
migration_url=$(with_user "$database_url" "${db_name}_ddl" "$role_pw")
database_url=$(with_user "$database_url" "${db_name}_app" "$role_pw")

# --- tenantry serve -----------------------------------------------------------
jwt_secret=$(node -p 'require("crypto").randomBytes(36).toString("base64url")') # 48 bytes
export DATABASE_URL=$database_url MIGRATION_DATABASE_URL=$migration_url JWT_SECRET=$jwt_secret
unset TENANTRY_ENV JWT_PUBLIC_KEY_FILE JWT_ISSUER JWT_AUDIENCE JWT_TENANT_CLAIM JWT_TENANT_ID_CLAIM JWT_MAX_LIFETIME

server_log=out/e2e-server.log
: >"$server_log"
port=$(free_port)
ADDR=127.0.0.1:$port "$bin" serve >>"$server_log" 2>&1 &
server_pid=$!
base_url=http://127.0.0.1:$port

ready() {
  node -e 'fetch(process.argv[1]).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))' "$base_url/readyz"
}
for i in $(seq 1 150); do
  kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$server_log" >&2; die "tenantry exited during start-up"; }
  ready && break
  [ "$i" -eq 150 ] && { tail -n 30 "$server_log" >&2; die "tenantry not ready after 30 s"; }
  sleep 0.2
done
say "tenantry ready on $base_url"

# --- tenants and tokens -------------------------------------------------------
"$bin" tenants create "$tenant_a" >/dev/null
"$bin" tenants create "$tenant_b" >/dev/null
token_a=$("$bin" token --tenant "$tenant_a" --ttl 30m)
token_b=$("$bin" token --tenant "$tenant_b" --ttl 30m)
admin_token=$("$bin" token --admin --ttl 30m)

# --- newman -------------------------------------------------------------------
say "running $collection"
npx --no --prefix postman newman run "$collection" \
  -e "$environment" \
  --env-var "baseUrl=$base_url" \
  --env-var "tenantA=$tenant_a" \
  --env-var "tenantB=$tenant_b" \
  --env-var "tokenA=$token_a" \
  --env-var "tokenB=$token_b" \
  --env-var "adminToken=$admin_token" \
  --env-var "jwtSecret=$jwt_secret" \
  --timeout-request 15000 \
  -r cli,junit --reporter-junit-export out/newman.xml ||
  { rc=$?; say "newman failed (exit $rc); server log: $server_log"; exit "$rc"; }
say "all assertions passed; JUnit report in out/newman.xml"
