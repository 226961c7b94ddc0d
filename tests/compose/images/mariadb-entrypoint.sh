#!/bin/bash
# TEST ONLY: the official MySQL image's first-run contract, for the local MariaDB stand-in. On an empty
# data directory: make the system tables, set the root password, make MYSQL_DATABASE and MYSQL_USER, run
# /docker-entrypoint-initdb.d/*.sh against a server listening on the socket only, then start for real.
set -euo pipefail
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
: "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD is required}"
if [ ! -d "$datadir/mysql" ]; then
    echo "mariadb-entrypoint: initialising $datadir"
    chown -R mysql:mysql "$datadir" /run/mysqld
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=normal >/dev/null
    mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" &
    pid=$!
    for _ in $(seq 60); do
        mariadb-admin --socket="$socket" -uroot ping --silent 2>/dev/null && break
        sleep 1
    done
    mariadb --protocol=socket --socket="$socket" -uroot <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}';
CREATE USER 'root'@'%' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}\` CHARACTER SET utf8mb4;
CREATE USER '${MYSQL_USER}'@'%' IDENTIFIED BY '${MYSQL_PASSWORD}';
GRANT ALL PRIVILEGES ON \`${MYSQL_DATABASE}\`.* TO '${MYSQL_USER}'@'%';
FLUSH PRIVILEGES;
SQL
    for script in /docker-entrypoint-initdb.d/*.sh; do
        [ -e "$script" ] || continue
        echo "mariadb-entrypoint: running $script"
        bash "$script"
    done
    mariadb-admin --socket="$socket" -uroot -p"${MYSQL_ROOT_PASSWORD}" shutdown
    wait "$pid"
fi
exec "$@" --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306
