#!/usr/bin/env bash
# The container path for real, as CI runs it (.ci/run) after .ci/images.sh:
#
#  1. build the Dockerfile with BuildKit on the local base images;
#  2. check the image: it runs as uid 65532, has no shell, its HEALTHCHECK
#     turns healthy, `tenantry healthcheck` fails when no server listens;
#  3. bring docker-compose.yml up (db on the local PostgreSQL image, the
#     one-shot migrate, app), run the Postman collection with newman against
#     the app's published loopback port;
#  4. stop the app while a request is in flight: the request completes and
#     the app exits 0 within its grace period;
#  5. remove the stack, its volume and network on every exit path.
#
# Knobs: DOCKER (a client whose `build` has BuildKit), COMPOSE (the compose
# command), GO_IMAGE, RUNTIME_IMAGE, POSTGRES_IMAGE (default: the tenantry-local
# images .ci/images.sh prints), TENANTRY_IMAGE (tag to build, tenantry:local).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'container-check: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

DOCKER=${DOCKER:-docker}
read -r -a compose <<<"${COMPOSE:-docker-compose}"
go_version=$(awk '$1=="toolchain"{sub(/^go/,"",$2); print $2; exit}' go.mod)
GO_IMAGE=${GO_IMAGE:-tenantry-local/golang:$go_version-bookworm}
RUNTIME_IMAGE=${RUNTIME_IMAGE:-tenantry-local/static:nonroot}
export POSTGRES_IMAGE=${POSTGRES_IMAGE:-tenantry-local/postgres:15}
image=${TENANTRY_IMAGE:-tenantry:local}
# The compose file's build services are tagged tenantry:local; CI builds
# that tag itself (below) and runs compose with --no-build.
[ "$image" = tenantry:local ] || die "TENANTRY_IMAGE must be tenantry:local, the tag docker-compose.yml names"

project=tenantry-ci-$$
export COMPOSE_PROJECT_NAME=$project
export JWT_SECRET
JWT_SECRET=$(head -c 36 /dev/urandom | base64 | tr '+/' '-_') # 48 characters
export APP_PUBLISH=127.0.0.1: # a free loopback port, whatever else runs here
mkdir -p out

probe=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [ -n "$probe" ] && "$DOCKER" rm -f "$probe" >/dev/null 2>&1
  if [ "$rc" -ne 0 ]; then
    say "stack logs (last 40 lines per service):"
    "${compose[@]}" logs --no-color --tail=40 >&2 2>/dev/null
  fi
  "${compose[@]}" down -v --remove-orphans --timeout 30 >/dev/null 2>&1 ||
    say "compose down failed; remove project $project by hand"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. build -----------------------------------------------------------------
say "building $image (GO_IMAGE=$GO_IMAGE RUNTIME_IMAGE=$RUNTIME_IMAGE)"
t0=$SECONDS
DOCKER_BUILDKIT=1 "$DOCKER" build -q \
  --build-arg GO_IMAGE="$GO_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" \
  --build-arg VERSION=ci --build-arg REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  -t "$image" . >/dev/null
size=$("$DOCKER" image inspect -f '{{.Size}}' "$image")
say "built $image in $((SECONDS - t0)) s; image size $((size / 1000000)) MB ($size bytes)"

# --- 2a. checks that need no database -----------------------------------------
# No shell: each of these must fail to start because the file is missing
# (docker run's 127 with "no such file"), not for some other reason.
for sh in /bin/sh /bin/bash /busybox/sh /usr/bin/sh; do
  rc=0
  out=$("$DOCKER" run --rm --entrypoint "$sh" "$image" -c true 2>&1) || rc=$?
  [ "$rc" -eq 127 ] && grep -qi 'no such file' <<<"$out" ||
    die "$image with entrypoint $sh: exit $rc ($out); want 127, no such file: the image has a shell?"
done
say "ok: no shell (/bin/sh, /bin/bash, /busybox/sh, /usr/bin/sh do not exist)"

# healthcheck exits non-zero when nothing listens on ADDR's port, and says
# so (the same subcommand succeeding against the running app is checked
# below, so this failure is the server's absence, not a broken binary).
rc=0
out=$("$DOCKER" run --rm "$image" healthcheck 2>&1) || rc=$?
[ "$rc" -ne 0 ] && grep -q 'connection refused' <<<"$out" ||
  die "\`tenantry healthcheck\` with no server: exit $rc ($out); want non-zero, connection refused"
say "ok: \`tenantry healthcheck\` fails when the server is down (exit $rc: $out)"

# --- 3. compose stack ---------------------------------------------------------
say "compose up (project $project, db image $POSTGRES_IMAGE)"
t0=$SECONDS
"${compose[@]}" up -d --no-build >&2
app=$("${compose[@]}" ps -q app)
[ -n "$app" ] || die "no app container"

# HEALTHCHECK: interval 10 s, start period 10 s; 120 s covers a slow first
# start on a shared machine without letting a stuck app hang CI.
health=""
for _ in $(seq 1 120); do
  health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$app")
  [ "$health" = healthy ] && break
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$app")" = true ] || die "app exited during start-up"
  sleep 1
done
[ "$health" = healthy ] || die "app health is '$health' after 120 s"
say "ok: app HEALTHCHECK turned healthy $((SECONDS - t0)) s after compose up"

"$DOCKER" exec "$app" /tenantry healthcheck || die "\`tenantry healthcheck\` fails against the running app"
migrate=$("${compose[@]}" ps -q migrate)
[ "$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$migrate")" = 0 ] || die "migrate did not exit 0"

# --- 2b. the running server's user --------------------------------------------
uids=$("$DOCKER" top "$app" -eo pid,uid,comm | awk 'NR>1 {print $2}' | sort -u | tr '\n' ' ')
[ "$uids" = "65532 " ] || die "app processes run as uid(s) $uids; want only 65532"
[ "$("$DOCKER" inspect -f '{{.Config.User}}' "$image")" != "" ] || die "image sets no USER"
say "ok: app runs as uid 65532"

hostport=$("${compose[@]}" port app 8080)
base_url=http://$hostport
case "$hostport" in 127.0.0.1:*) ;; *) die "app published on $hostport, not loopback" ;; esac
say "app on $base_url"

# --- 3b. the Postman collection -----------------------------------------------
want=$(node -p 'require("./postman/package.json").dependencies.newman')
have=$(node -p 'try{require("./postman/node_modules/newman/package.json").version}catch(e){""}')
if [ "$have" != "$want" ]; then
  say "installing newman $want (npm ci --prefix postman)"
  npm ci --prefix postman --no-audit --no-fund --loglevel=error >&2
fi
cli() { "${compose[@]}" exec -T app /tenantry "$@"; }
cli tenants create acme >/dev/null
cli tenants create globex >/dev/null
token_a=$(cli token --tenant acme --ttl 30m)
token_b=$(cli token --tenant globex --ttl 30m)
admin_token=$(cli token --admin --ttl 30m)
say "running the Postman collection against the compose stack"
npx --no --prefix postman newman run postman/tenantry.postman_collection.json \
  -e postman/local.postman_environment.json \
  --env-var "baseUrl=$base_url" \
  --env-var "tenantA=acme" --env-var "tenantB=globex" \
  --env-var "tokenA=$token_a" --env-var "tokenB=$token_b" \
  --env-var "adminToken=$admin_token" --env-var "jwtSecret=$JWT_SECRET" \
  --timeout-request 15000 \
  -r cli,junit --reporter-junit-export out/newman-compose.xml ||
  die "newman failed against the compose stack"
say "ok: newman passed against the compose stack"

# --- 4. graceful stop with a request in flight --------------------------------
# The request's headers and the first bytes of its body reach the server;
# then `compose stop` sends SIGTERM; two seconds later the rest of the body
# follows. A graceful stop answers it (201) and then exits 0, inside the
# app's stop_grace_period (30 s; serve drains for up to 25 s).
say "stopping the app with a request in flight"
t0=$SECONDS
node - "$hostport" "$token_a" "${compose[*]}" <<'EOF'
const http = require("http");
const { spawn } = require("child_process");
const [hostport, token, composeCmd] = process.argv.slice(2); // argv[1] is "-" (script on stdin)
const [host, port] = [hostport.slice(0, hostport.lastIndexOf(":")), hostport.slice(hostport.lastIndexOf(":") + 1)];
const body = JSON.stringify({ name: "in-flight-at-stop", description: "sent across a SIGTERM" });
let stopped = null;
const req = http.request({
  host, port, method: "POST", path: "/items",
  headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body),
             Authorization: "Bearer " + token, Connection: "close" },
}, (res) => {
  let data = "";
  res.on("data", (c) => (data += c));
  res.on("end", () => {
    console.error(`in-flight request answered ${res.statusCode}: ${data.slice(0, 200)}`);
    if (res.statusCode !== 201) process.exit(1);
    (stopped || Promise.resolve(0)).then((code) => process.exit(code === 0 ? 0 : 1));
  });
});
req.on("error", (e) => { console.error("in-flight request lost: " + e.message); process.exit(1); });
req.write(body.slice(0, 5));
setTimeout(() => {
  const [cmd, ...args] = composeCmd.split(" ");
  const p = spawn(cmd, [...args, "stop", "-t", "30", "app"], { stdio: "inherit" });
  stopped = new Promise((resolve) => p.on("exit", resolve));
  setTimeout(() => req.end(body.slice(5)), 2000);
}, 1000);
EOF
elapsed=$((SECONDS - t0))
code=$("$DOCKER" inspect -f '{{.State.ExitCode}} {{.State.Running}}' "$app")
[ "$code" = "0 false" ] || die "app after stop: exit code and running = $code; want 0 false"
[ "$elapsed" -lt 30 ] || die "stop took $elapsed s; the grace period is 30 s"
say "ok: in-flight request answered, app exited 0 ${elapsed} s after stop began"
say "all container checks passed"
