# TEST ONLY: MariaDB from Debian's packages, standing in for the `mysql:8.4` image that cannot be
# pulled on the CI machine. It keeps the official image's first-run contract (MYSQL_* variables,
# /docker-entrypoint-initdb.d/*.sh) so docker-compose.yml runs unchanged against it.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mariadb-server mariadb-client \
    && rm -rf /var/lib/apt/lists/* /var/lib/mysql/* \
    && mkdir -p /run/mysqld \
    && chown mysql:mysql /run/mysqld /var/lib/mysql
COPY mariadb-entrypoint.sh /usr/local/bin/mariadb-entrypoint.sh
EXPOSE 3306
ENTRYPOINT ["/usr/local/bin/mariadb-entrypoint.sh"]
CMD ["mariadbd"]
