#!/usr/bin/env bash
# A local MariaDB server for development and tests, on 127.0.0.1 only.
#
#   scripts/mariadb.sh start   install (Debian) if absent, initialise, start, create database and user
#   scripts/mariadb.sh stop    stop the server started here (by its recorded PID)
#   scripts/mariadb.sh status
#
# Settings (environment): MYSQL_PORT (3306), MYSQL_DATABASE (movieapp), MYSQL_USER (movieapp),
# MYSQL_PASSWORD (movieapp), MARIADB_DIR (.data/mariadb). The user gets every privilege on
# databases named movieapp*, so tests can use their own (movieapp_test).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${MARIADB_DIR:-$root/.data/mariadb}"
port="${MYSQL_PORT:-3306}"
database="${MYSQL_DATABASE:-movieapp}"
user="${MYSQL_USER:-movieapp}"
password="${MYSQL_PASSWORD:-movieapp}"
socket="$dir/mariadb.sock"
pidfile="$dir/mariadb.pid"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if ! command -v mariadbd >/dev/null 2>&1; then
    echo "mariadb: installing mariadb-server (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
  fi
  mkdir -p "$dir"
  if running; then
    echo "mariadb: already running (pid $(cat "$pidfile"))"
  else
    if [ ! -d "$dir/data/mysql" ]; then
      mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 \
        || { cat "$dir/install.log"; exit 1; }
    fi
    nohup mariadbd --no-defaults --user=root --datadir="$dir/data" --socket="$socket" \
      --pid-file="$pidfile" --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
      --innodb-flush-log-at-trx-commit=2 --max-connections=500 \
      --log-error="$dir/error.log" >/dev/null 2>&1 &
    for _ in $(seq 1 120); do
      mariadb-admin --no-defaults --socket="$socket" -uroot ping >/dev/null 2>&1 && break
      sleep 0.5
    done
    mariadb-admin --no-defaults --socket="$socket" -uroot ping >/dev/null 2>&1 \
      || { echo "mariadb: did not become ready"; tail -20 "$dir/error.log"; exit 1; }
    echo "mariadb: started on 127.0.0.1:$port (pid $(cat "$pidfile"))"
  fi
  mariadb --no-defaults --socket="$socket" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$database\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`movieapp%\`.* TO '$user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`movieapp%\`.* TO '$user'@'localhost';
FLUSH PRIVILEGES;
SQL
}

stop() {
  if running; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 60); do running || break; sleep 0.5; done
    echo "mariadb: stopped"
  else
    echo "mariadb: not running"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "mariadb: running (pid $(cat "$pidfile"))"; else echo "mariadb: stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
