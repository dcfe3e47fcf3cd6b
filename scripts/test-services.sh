#!/usr/bin/env bash
# Makes sure the SQL servers the tests need answer on 127.0.0.1, starting them if this
# machine has them installed but stopped. Tests that need them fail (never skip) when absent.
set -u
pg_ok() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
my_ok() { mysqladmin -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }
if ! pg_ok && command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! my_ok && [ -x /usr/sbin/mariadbd ]; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
for _ in $(seq 1 30); do pg_ok && my_ok && break; sleep 1; done
pg_ok && echo "PostgreSQL on 127.0.0.1:5432: up" || echo "PostgreSQL on 127.0.0.1:5432: NOT reachable"
my_ok && echo "MariaDB on 127.0.0.1:3306: up" || echo "MariaDB on 127.0.0.1:3306: NOT reachable"
exit 0
