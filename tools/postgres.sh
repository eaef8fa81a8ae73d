# Source this file, then call start_postgres: it installs PostgreSQL from Debian when missing,
# starts its first cluster, gives the current user a role that may create databases, and exports
# LEDGER_TEST_POSTGRES_URL. Connections use the Unix socket with peer authentication, so no
# password is set or stored anywhere. Installing needs root.
start_postgres() {
    if ! command -v pg_lsclusters >/dev/null 2>&1 \
        || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "error: installing PostgreSQL needs root; run as root or set LEDGER_TEST_POSTGRES_URL" >&2
            return 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y postgresql
    fi

    local version name port status
    if [ -z "$(pg_lsclusters --no-header)" ]; then
        # Images that disable cluster creation on install get one here.
        pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -n 1)" main
    fi
    read -r version name port status _ <<<"$(pg_lsclusters --no-header | head -n 1)"
    if [ "$status" != "online" ]; then
        pg_ctlcluster "$version" "$name" start
    fi

    local role
    role="$(id -un)"
    if ! runuser -u postgres -- psql --port "$port" -tAc \
        "SELECT 1 FROM pg_roles WHERE rolname = '$role'" | grep -q 1; then
        runuser -u postgres -- createuser --port "$port" --createdb "$role"
    fi
    export LEDGER_TEST_POSTGRES_URL="postgresql+psycopg://${role}@/postgres?host=/var/run/postgresql&port=${port}"
    echo "PostgreSQL $version/$name is online on port $port; tests connect as role $role"
}
