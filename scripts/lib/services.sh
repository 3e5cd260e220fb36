# shellcheck shell=bash
# Real backing services for tests and benchmarks, started on loopback in a private temporary
# directory on non-default ports, and stopped by PID. Sourced by scripts/test (and scripts/bench).
#
#   svc_install_missing          apt/cargo-install what is missing (PostgreSQL, Redis, NATS, s3s-fs)
#   svc_start_all                start the four services and export ABBOTIK_TEST_* / AWS_* for tests
#   svc_start_postgres|redis|nats|s3
#   svc_stop_all                 stop every service this shell started (trap it on EXIT)
#
# Nothing here touches a service it did not start: each start records "name pid", and stop
# signals exactly those PIDs.

SVC_DIR="${SVC_DIR:-}"
SVC_STARTED=()         # "name:pid" entries, in start order
SVC_APT_UPDATED=0
S3S_FS_VERSION="${S3S_FS_VERSION:-0.14.1}"

svc_log() { printf '[services] %s\n' "$*" >&2; }
svc_die() { printf '[services] ERROR: %s\n' "$*" >&2; return 1; }

svc_is_root() { [ "$(id -u)" = 0 ]; }

# apt-get install, with one `apt-get update` per run; as a normal user, print the command.
svc_apt_install() {
    if ! svc_is_root; then
        svc_die "missing packages: $*; install them with: sudo apt-get update && sudo apt-get install -y $*"
        return 1
    fi
    if [ "$SVC_APT_UPDATED" = 0 ]; then
        svc_log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        SVC_APT_UPDATED=1
    fi
    svc_log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# The directory of the PostgreSQL server binaries, found as the server does (B10): ABBOTIK_PG_BIN,
# else initdb on PATH (symlinks resolved, so createdb sits beside it), else the newest
# /usr/lib/postgresql/*/bin.
svc_pg_bin() {
    if [ -n "${ABBOTIK_PG_BIN:-}" ] && [ -x "$ABBOTIK_PG_BIN/initdb" ]; then
        echo "$ABBOTIK_PG_BIN"; return 0
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"; return 0
    fi
    local d
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    return 1
}

svc_find() { # name: on PATH or in the sbin dirs apt uses
    command -v "$1" 2>/dev/null && return 0
    local d
    for d in /usr/sbin /usr/local/sbin "$HOME/.cargo/bin"; do
        if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
    done
    return 1
}

svc_install_missing() {
    local pkgs=()
    svc_pg_bin >/dev/null || pkgs+=(postgresql)
    svc_find redis-server >/dev/null || pkgs+=(redis-server)
    svc_find nats-server >/dev/null || pkgs+=(nats-server)
    if [ "${#pkgs[@]}" -gt 0 ]; then svc_apt_install "${pkgs[@]}" || return 1; fi
    if svc_is_root && ! id postgres >/dev/null 2>&1; then
        # PostgreSQL refuses to run as root; the Debian package normally creates this user.
        svc_log "creating system user postgres"
        useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
    fi
    if ! svc_find s3s-fs >/dev/null; then
        svc_log "cargo install s3s-fs@$S3S_FS_VERSION (a real S3-compatible server; ~2-6 minutes, once)"
        (cd / && env -u CARGO_TARGET_DIR cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --locked --quiet) || return 1
    fi
}

# A port on 127.0.0.1 nobody listens on, from base upward (randomised a little so that two
# runs on one machine rarely race for the same port). Bases stay below the kernel's ephemeral
# range (`ip_local_port_range`, 32768–60999 by default): a port in it can be taken by any
# outgoing connection between this probe and the service's bind (it happened: redis lost
# its port to one and CI failed at start-up).
svc_free_port() {
    local base=$1 p i
    p=$((base + RANDOM % 100))
    for ((i = 0; i < 400; i++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
        p=$((p + 1))
    done
    svc_die "no free port from $base"
}

svc_wait_port() { # name port pid [seconds]
    local name=$1 port=$2 pid=$3 secs=${4:-30} i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            svc_die "$name exited during start-up; log: $SVC_DIR/$name.log"
            tail -n 20 "$SVC_DIR/$name.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    svc_die "$name did not listen on 127.0.0.1:$port within ${secs}s; log: $SVC_DIR/$name.log"
}

svc_init_dir() {
    if [ -z "$SVC_DIR" ]; then
        # /tmp, not $TMPDIR: the postgres user must be able to traverse every parent directory.
        SVC_DIR=$(mktemp -d /tmp/abbotik-services.XXXXXX)
        SVC_DIR_OWNED=1
    fi
    # The postgres user must be able to reach its own subdirectory.
    chmod 755 "$SVC_DIR"
}

svc_as_pg() {
    if svc_is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

svc_start_postgres() {
    svc_init_dir
    local bin port data run
    bin=$(svc_pg_bin) || { svc_die "PostgreSQL binaries not found"; return 1; }
    port=${ABBOTIK_TEST_PG_PORT:-$(svc_free_port 26432)}
    data="$SVC_DIR/pg/data"
    run="$SVC_DIR/pg/run"
    mkdir -p "$data" "$run"
    if svc_is_root; then chown -R postgres: "$SVC_DIR/pg"; fi
    chmod 700 "$data"
    svc_as_pg "$bin/initdb" -D "$data" -U abbotik --auth=trust -E UTF8 --locale=C \
        >"$SVC_DIR/pg/initdb.log" 2>&1 || { cat "$SVC_DIR/pg/initdb.log" >&2; return 1; }
    # Durability off: a test cluster is thrown away. Many tests each open a pool, hence 400.
    svc_as_pg "$bin/pg_ctl" -D "$data" -l "$SVC_DIR/pg/postgres.log" -w -t 60 -o \
        "-p $port -k $run -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB" \
        start >/dev/null || { tail -n 30 "$SVC_DIR/pg/postgres.log" >&2; return 1; }
    local pid
    pid=$(head -n 1 "$data/postmaster.pid")
    SVC_STARTED+=("postgres:$pid")
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U abbotik abbotik
    export ABBOTIK_TEST_DATABASE_URL="postgres://abbotik:abbotik@127.0.0.1:$port/abbotik"
    svc_log "postgres  pid $pid  127.0.0.1:$port  ($("$bin/postgres" --version | awk '{print $3}'))"
}

svc_start_redis() {
    svc_init_dir
    local bin port pid
    bin=$(svc_find redis-server) || { svc_die "redis-server not found"; return 1; }
    port=${ABBOTIK_TEST_REDIS_PORT:-$(svc_free_port 26379)}
    mkdir -p "$SVC_DIR/redis"
    "$bin" --port "$port" --bind 127.0.0.1 --dir "$SVC_DIR/redis" --save "" --appendonly no \
        --daemonize no >"$SVC_DIR/redis.log" 2>&1 &
    pid=$!
    SVC_STARTED+=("redis:$pid")
    svc_wait_port redis "$port" "$pid" || return 1
    export ABBOTIK_TEST_REDIS_URL="redis://127.0.0.1:$port/"
    svc_log "redis     pid $pid  127.0.0.1:$port"
}

svc_start_nats() {
    svc_init_dir
    local bin port pid
    bin=$(svc_find nats-server) || { svc_die "nats-server not found"; return 1; }
    port=${ABBOTIK_TEST_NATS_PORT:-$(svc_free_port 26422)}
    mkdir -p "$SVC_DIR/nats"
    "$bin" -a 127.0.0.1 -p "$port" -js -sd "$SVC_DIR/nats" >"$SVC_DIR/nats.log" 2>&1 &
    pid=$!
    SVC_STARTED+=("nats:$pid")
    svc_wait_port nats "$port" "$pid" || return 1
    export ABBOTIK_TEST_NATS_URL="nats://127.0.0.1:$port"
    svc_log "nats      pid $pid  127.0.0.1:$port  (JetStream)"
}

svc_start_s3() {
    svc_init_dir
    local bin port pid bucket=${ABBOTIK_TEST_S3_BUCKET:-abbotik-test}
    bin=$(svc_find s3s-fs) || { svc_die "s3s-fs not found (cargo install s3s-fs@$S3S_FS_VERSION --features binary --locked)"; return 1; }
    port=${ABBOTIK_TEST_S3_PORT:-$(svc_free_port 26014)}
    # s3s-fs serves each directory under its root as a bucket.
    mkdir -p "$SVC_DIR/s3/$bucket"
    export AWS_ACCESS_KEY_ID=abbotik-test-key
    export AWS_SECRET_ACCESS_KEY=abbotik-test-secret-0123456789
    export AWS_REGION=us-east-1
    "$bin" --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" "$SVC_DIR/s3" >"$SVC_DIR/s3.log" 2>&1 &
    pid=$!
    SVC_STARTED+=("s3:$pid")
    svc_wait_port s3 "$port" "$pid" || return 1
    export ABBOTIK_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    export ABBOTIK_TEST_S3_BUCKET="$bucket"
    svc_log "s3 (s3s-fs) pid $pid  127.0.0.1:$port  bucket $bucket"
}

svc_start_all() {
    svc_start_postgres && svc_start_redis && svc_start_nats && svc_start_s3 || return 1
    {
        echo "export ABBOTIK_TEST_DATABASE_URL=$ABBOTIK_TEST_DATABASE_URL"
        echo "export ABBOTIK_TEST_REDIS_URL=$ABBOTIK_TEST_REDIS_URL"
        echo "export ABBOTIK_TEST_NATS_URL=$ABBOTIK_TEST_NATS_URL"
        echo "export ABBOTIK_TEST_S3_ENDPOINT=$ABBOTIK_TEST_S3_ENDPOINT"
        echo "export ABBOTIK_TEST_S3_BUCKET=$ABBOTIK_TEST_S3_BUCKET"
        echo "export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
        echo "export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
        echo "export AWS_REGION=$AWS_REGION"
    } >"$SVC_DIR/env"
    svc_log "service environment: $SVC_DIR/env"
}

# Stops, in reverse start order, exactly the PIDs started here; then removes the directory.
svc_stop_all() {
    local i entry name pid sig n
    for ((i = ${#SVC_STARTED[@]} - 1; i >= 0; i--)); do
        entry=${SVC_STARTED[$i]}
        name=${entry%%:*}
        pid=${entry##*:}
        kill -0 "$pid" 2>/dev/null || continue
        # PostgreSQL: SIGINT is "fast shutdown" (SIGTERM would wait for clients to leave).
        sig=TERM
        [ "$name" = postgres ] && sig=INT
        kill -s "$sig" "$pid" 2>/dev/null || true
        for ((n = 0; n < 150; n++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            svc_log "$name (pid $pid) did not stop in 15 s; killing it"
            kill -s KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        svc_log "stopped $name (pid $pid)"
    done
    SVC_STARTED=()
    if [ "${SVC_DIR_OWNED:-0}" = 1 ] && [ -d "$SVC_DIR" ] && [ -z "${ABBOTIK_KEEP_SERVICES_DIR:-}" ]; then
        rm -rf -- "$SVC_DIR"
    fi
}
