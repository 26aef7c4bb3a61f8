#!/usr/bin/env bash
# Install the Debian packages sqlnb's engines, browser tests and memcheck need, when we can (root + apt).
# Under CI=true a missing package is an error; elsewhere a warning.
set -u
need=()
[ -f /usr/include/dbsql.h ] || need+=(libdb5.3-sql-dev)
[ -f /usr/include/db.h ] || need+=(libdb5.3-dev)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[sqlnb] installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null && exit 0
fi
msg="[sqlnb] missing Debian packages: ${need[*]} (apt-get install ${need[*]})"
if [ "${CI:-}" = "true" ]; then echo "$msg" >&2; exit 1; fi
echo "$msg: the bdb engine and/or browser tests will be unavailable" >&2
exit 0
