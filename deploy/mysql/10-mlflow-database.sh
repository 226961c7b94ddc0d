#!/bin/bash
# MySQL's entrypoint runs this once, on an empty data directory: MYSQL_DATABASE (prices) is made by the
# entrypoint itself; this adds MLflow's database and gives the same user both.
set -euo pipefail
mysql --protocol=socket -uroot -p"${MYSQL_ROOT_PASSWORD}" <<SQL
CREATE DATABASE IF NOT EXISTS \`${MLFLOW_DATABASE}\` CHARACTER SET utf8mb4;
GRANT ALL PRIVILEGES ON \`${MLFLOW_DATABASE}\`.* TO '${MYSQL_USER}'@'%';
FLUSH PRIVILEGES;
SQL
