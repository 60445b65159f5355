#!/usr/bin/env bash
# Installs the real engines of the scale-out tier (Debian 12): postgresql-15 (server programs in
# /usr/lib/postgresql/15/bin) and ceph-mon, ceph-osd, radosgw, ceph-common (a single-node Ceph with an S3
# gateway). Idempotent and non-interactive: skips apt entirely when everything is present, and waits for
# another apt/dpkg run to finish instead of failing on its lock. Starts nothing: services are refused
# while packages install (policy-rc.d), and the default PostgreSQL cluster Debian makes (15/main, port
# 5432) is stopped and set to manual start, as are the Ceph systemd targets. The tier runs private
# engines on free loopback ports (test/scaleout/engines.ts).
set -euo pipefail

# path -> Debian package that provides it
declare -A PROVIDER=(
  [/usr/lib/postgresql/15/bin/initdb]=postgresql-15
  [/usr/lib/postgresql/15/bin/pg_ctl]=postgresql-15
  [/usr/lib/postgresql/15/bin/postgres]=postgresql-15
  [/usr/bin/ceph-mon]=ceph-mon
  [/usr/bin/monmaptool]=ceph-base
  [/usr/bin/ceph-osd]=ceph-osd
  [/usr/bin/radosgw]=radosgw
  [/usr/bin/radosgw-admin]=ceph-common
  [/usr/bin/ceph]=ceph-common
  [/usr/bin/ceph-authtool]=ceph-common
  [/usr/sbin/runuser]=util-linux
)

missing_pkgs=()
for path in "${!PROVIDER[@]}"; do
  [ -x "$path" ] && continue
  pkg="${PROVIDER[$path]}"
  case " ${missing_pkgs[*]-} " in *" $pkg "*) ;; *) missing_pkgs+=("$pkg") ;; esac
done

# Nothing of the packages may stay running or start at boot: Debian's default cluster 15/main (port 5432)
# is stopped and set to manual start; the postgresql and Ceph systemd units are disabled.
quiesce() {
  [ "$(id -u)" -eq 0 ] || return 0
  local ver name _rest unit
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver name _rest; do
      pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
      if [ -f "/etc/postgresql/$ver/$name/start.conf" ]; then echo manual >"/etc/postgresql/$ver/$name/start.conf"; fi
    done < <(pg_lsclusters -h 2>/dev/null || true)
  fi
  if command -v systemctl >/dev/null 2>&1; then
    for unit in postgresql ceph.target ceph-mon.target ceph-osd.target ceph-radosgw.target ceph-mgr.target ceph-mds.target; do
      if [ -d /run/systemd/system ]; then systemctl stop "$unit" >/dev/null 2>&1 || true; fi
      systemctl disable "$unit" >/dev/null 2>&1 || true
    done
  fi
}

if [ "${#missing_pkgs[@]}" -eq 0 ]; then
  quiesce
  echo "test/scaleout/install-deps.sh: PostgreSQL 15 and Ceph (mon, osd, radosgw) present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "test/scaleout/install-deps.sh: must run as root (or with sudo) to install ${missing_pkgs[*]}" >&2
  exit 1
fi
echo "test/scaleout/install-deps.sh: installing ${missing_pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive

# Refuse service starts while packages install (policy-rc.d exit 101), restoring whatever policy was there.
POLICY=/usr/sbin/policy-rc.d
policy_backup=""
if [ -e "$POLICY" ]; then
  policy_backup="$(mktemp)"
  cp -p "$POLICY" "$policy_backup"
fi
restore_policy() {
  if [ -n "$policy_backup" ]; then
    cp -p "$policy_backup" "$POLICY"
    rm -f "$policy_backup"
    policy_backup=""
  else
    rm -f "$POLICY"
  fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' >"$POLICY"
chmod 755 "$POLICY"

apt_get() {
  # Another apt run (another tier's install) holds the lock: wait for it rather than fail.
  apt-get -y -q -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
  apt-get -q -o DPkg::Lock::Timeout=900 update
fi
if ! apt_get install --no-install-recommends "${missing_pkgs[@]}"; then
  apt-get -q -o DPkg::Lock::Timeout=900 update
  apt_get install --no-install-recommends "${missing_pkgs[@]}"
fi
restore_policy
trap - EXIT

quiesce

for path in "${!PROVIDER[@]}"; do
  [ -x "$path" ] || { echo "test/scaleout/install-deps.sh: $path still missing after install" >&2; exit 1; }
done
id -u postgres >/dev/null 2>&1 || { echo "test/scaleout/install-deps.sh: OS user postgres missing after install" >&2; exit 1; }
echo "test/scaleout/install-deps.sh: done"
