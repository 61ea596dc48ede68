#!/bin/bash
# The image's entrypoint, for a single PostgreSQL server (with Patroni, its command replaces this).
# It behaves as the official postgres image's does for what terroir's manifests use:
#
#   entrypoint -c config_file=... -c hba_file=...   (arguments starting with "-": postgres's)
#
# On an empty data directory ($PGDATA, without PG_VERSION): initdb, the superuser `postgres` with
# the password POSTGRES_PASSWORD; then a server on the socket only (no TCP address) with the same
# arguments, in which the database POSTGRES_DB is made and /docker-entrypoint-initdb.d/* run
# (*.sh run if executable, else sourced; *.sql through psql); then that server stops. In every
# case it then becomes `postgres` with the arguments. Any other command runs as given.
set -Eeuo pipefail

die() { echo "entrypoint: $*" >&2; exit 1; }

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi
shift

: "${PGDATA:?PGDATA names the data directory}"

# Started as root (a plain `docker run`): the data directory is made the server's, then the rest
# runs as it. The manifests start it as postgres (uid 999) already.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] \
    || die "the data directory $PGDATA is empty and POSTGRES_PASSWORD, the superuser's password for initdb, is not set"
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  # The password reaches initdb through a pipe, never a command line or a file.
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options, as in the official image
  initdb --username=postgres --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=peer --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-}

  # The setup server: the same settings, reached through its socket only, so that nothing
  # connects before the setup is done. It archives nothing: with archive_mode on, the WAL it
  # writes waits in pg_wal for the server's own archive_command, and its stop never waits on a
  # repository that may not be there yet.
  pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@") -c listen_addresses='' -c archive_command='' -p ${PGPORT:-5432}" -w start
  psql=(psql -v ON_ERROR_STOP=1 --username postgres --no-password --no-psqlrc)
  if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
    "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        echo "entrypoint: running $f" >&2
        if [ -x "$f" ]; then
          "$f"
        else
          # shellcheck disable=SC1090 # the scripts are the deployment's
          . "$f"
        fi
        ;;
      *.sql)
        echo "entrypoint: running $f" >&2
        "${psql[@]}" --dbname "${POSTGRES_DB:-postgres}" -f "$f"
        ;;
      *) [ ! -e "$f" ] || echo "entrypoint: ignoring $f" >&2 ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "entrypoint: the database is initialised; starting PostgreSQL" >&2
fi

exec postgres "$@"
