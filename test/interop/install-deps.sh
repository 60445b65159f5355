#!/usr/bin/env bash
# Installs the real peers used by the interop tier and the benches:
#   swaks (+ the Perl TLS modules its --tls needs), postfix (+ smtp-source/smtp-sink),
#   promtool (prometheus), curl, python3, dovecot (imapd, pop3d), fetchmail, mutt, tmux, openssl,
#   haproxy (bench:proxy's C byte-pipe ceiling), unzip (export zip checks), chromium (the web access in a
#   real browser, driven by puppeteer-core; no browser is ever downloaded), dovecot-fts-xapian
#   (bench:search's indexed Dovecot), Exim (Debian's exim4-daemon-light binary; see install_exim),
#   slapd + ldap-utils (the directory test's private OpenLDAP; no packaged slapd is configured or left up).
# Idempotent and non-interactive. Skips apt entirely when everything is present.
# Never leaves a Postfix or Prometheus service running on its default ports.
set -euo pipefail

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      exec sudo -E bash "$0" "$@"
    fi
    echo "install-deps.sh: must run as root (or with sudo) to install packages" >&2
    exit 1
  fi
}

# command -> Debian package that provides it
declare -A PROVIDER=(
  [swaks]=swaks
  [/usr/sbin/postfix]=postfix
  [/usr/sbin/smtp-source]=postfix
  [/usr/sbin/smtp-sink]=postfix
  [/usr/sbin/sendmail]=postfix
  [promtool]=prometheus
  [curl]=curl
  [python3]=python3
  [/usr/sbin/dovecot]=dovecot-core
  [/usr/lib/dovecot/imap]=dovecot-imapd
  [/usr/lib/dovecot/pop3]=dovecot-pop3d
  [/usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so]=dovecot-fts-xapian
  [fetchmail]=fetchmail
  [mutt]=mutt
  [tmux]=tmux
  [openssl]=openssl
  [/usr/sbin/haproxy]=haproxy
  [unzip]=unzip
  [/usr/bin/chromium]=chromium
  [sha256sum]=coreutils
  [/usr/sbin/slapd]=slapd
  [/usr/bin/ldapadd]=ldap-utils
)

# A path is present when executable (a program) or, for a plugin (*.so), when it exists.
present_path() { [ -x "$1" ] || { [[ "$1" == *.so ]] && [ -e "$1" ]; }; }

missing_pkgs=()
for cmd in "${!PROVIDER[@]}"; do
  if [[ "$cmd" == /* ]]; then
    present_path "$cmd" && continue
  else
    command -v "$cmd" >/dev/null 2>&1 && continue
  fi
  pkg="${PROVIDER[$cmd]}"
  case " ${missing_pkgs[*]-} " in *" $pkg "*) ;; *) missing_pkgs+=("$pkg") ;; esac
done

stop_services() {
  # Stop/disable anything the packages may have auto-started (systemd or sysv).
  local svc
  for svc in postfix exim4 prometheus prometheus-node-exporter dovecot fetchmail haproxy; do
    if command -v systemctl >/dev/null 2>&1; then
      if [ -d /run/systemd/system ]; then
        systemctl stop "$svc" >/dev/null 2>&1 || true
      fi
      # Works offline too (no running systemd): removes the wants/ symlinks.
      systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
    if [ -x "/etc/init.d/$svc" ]; then
      "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1 && [ -e "/etc/init.d/$svc" ]; then
      update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
  done
  # A system-wide Dovecot (ports 110/143/993/995) must not stay up either.
  if [ -x /usr/sbin/dovecot ] && pgrep -x dovecot >/dev/null 2>&1; then
    /usr/sbin/dovecot stop >/dev/null 2>&1 || pkill -x dovecot 2>/dev/null || true
  fi
  # A system-wide Postfix started from /etc/postfix (port 25) must not stay up.
  if [ -x /usr/sbin/postfix ] && /usr/sbin/postfix status >/dev/null 2>&1; then
    /usr/sbin/postfix stop >/dev/null 2>&1 || true
  fi
  # Prometheus started without an init system: only kill the packaged binary's daemon.
  local pid
  for pid in $(pgrep -x prometheus 2>/dev/null || true); do
    if [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = /usr/bin/prometheus ]; then
      kill "$pid" 2>/dev/null || true
    fi
  done
  # A system-wide slapd (port 389) must not stay up; the directory test runs its own (postern-slapd-* dirs).
  for pid in $(pgrep -x slapd 2>/dev/null || true); do
    if [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/slapd ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'postern-slapd-'; then
      kill "$pid" 2>/dev/null || true
    fi
  done
}

# swaks runs without these but fails at STARTTLS with "TLS not available: requires Net::SSLeay".
perl_module_present() { perl -M"$1" -e 1 >/dev/null 2>&1; }
perl_module_present Net::SSLeay || missing_pkgs+=(libnet-ssleay-perl)
perl_module_present IO::Socket::SSL || missing_pkgs+=(libio-socket-ssl-perl)
# Real-world messages nobody here wrote for the SEARCH parity test (search-parity.ts): Python's email test samples.
[ -e /usr/lib/python3.11/test/test_email/data/msg_01.txt ] || missing_pkgs+=(libpython3.11-testsuite)

# Exim: Debian's exim4-daemon-light conflicts with postfix as an installed MTA (both provide
# mail-transport-agent), so unless the package is installed its files are unpacked to EXIM_ROOT
# (never run as a service, nothing on port 25), its libraries installed, and the Debian-exim
# user it is built to run as created. test/interop/exim.ts looks in both places.
EXIM_ROOT=/opt/postern-interop/exim4
exim_present() { [ -x /usr/sbin/exim4 ] || [ -x "$EXIM_ROOT/usr/sbin/exim4" ]; }
install_exim() {
  exim_present && id -u Debian-exim >/dev/null 2>&1 && return 0
  local dl deb deps
  if ! exim_present; then
    dl="$(mktemp -d)"
    chmod 755 "$dl"
    (cd "$dl" && apt-get download -q exim4-daemon-light) || { apt-get update -q && (cd "$dl" && apt-get download -q exim4-daemon-light); }
    deb="$(ls "$dl"/exim4-daemon-light_*.deb)"
    # Its libraries (first alternative of each dependency, versions dropped), minus the exim4-base
    # and debconf packages that would pull in exim4-config (which conflicts with postfix).
    deps="$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v -e '^exim4-base$' -e '^debconf' -e '^$')"
    # shellcheck disable=SC2086
    apt_get install --no-install-recommends $deps
    mkdir -p "$EXIM_ROOT"
    dpkg-deb -x "$deb" "$EXIM_ROOT"
    rm -rf "$dl"
  fi
  id -u Debian-exim >/dev/null 2>&1 || adduser --system --group --quiet --home /var/spool/exim4 --no-create-home --disabled-login --force-badname Debian-exim
}

if [ "${#missing_pkgs[@]}" -eq 0 ] && exim_present && id -u Debian-exim >/dev/null 2>&1; then
  echo "install-deps.sh: all interop peers present (swaks, postfix, smtp-source/sink, promtool, curl, python3, dovecot, fetchmail, mutt, tmux, openssl, haproxy, unzip, chromium, dovecot-fts-xapian, exim, slapd, ldap-utils)"
  exit 0
fi

need_root "$@"
echo "install-deps.sh: installing ${missing_pkgs[*]-} (and Exim if missing)"

export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string postern-interop.invalid" | debconf-set-selections
# slapd without a generated configuration or database: the test brings its own.
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections

# Refuse service starts while packages install (policy-rc.d exit 101), restoring
# whatever policy was there before.
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
  else
    rm -f "$POLICY"
  fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' >"$POLICY"
chmod 755 "$POLICY"

apt_get() {
  apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# Refresh the package lists if they are missing or if the install cannot find a candidate.
if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
  apt-get update -q
fi
if [ "${#missing_pkgs[@]}" -gt 0 ] && ! apt_get install --no-install-recommends "${missing_pkgs[@]}"; then
  apt-get update -q
  apt_get install --no-install-recommends "${missing_pkgs[@]}"
fi
install_exim

restore_policy
trap - EXIT
stop_services

# Final check: everything the tier needs is there now.
for cmd in "${!PROVIDER[@]}"; do
  if [[ "$cmd" == /* ]]; then
    present_path "$cmd" || { echo "install-deps.sh: $cmd still missing after install" >&2; exit 1; }
  else
    command -v "$cmd" >/dev/null 2>&1 || { echo "install-deps.sh: $cmd still missing after install" >&2; exit 1; }
  fi
done
for mod in Net::SSLeay IO::Socket::SSL; do
  perl_module_present "$mod" || { echo "install-deps.sh: Perl module $mod still missing after install" >&2; exit 1; }
done
exim_present || { echo "install-deps.sh: Exim still missing after install (neither /usr/sbin/exim4 nor $EXIM_ROOT/usr/sbin/exim4)" >&2; exit 1; }
id -u Debian-exim >/dev/null 2>&1 || { echo "install-deps.sh: user Debian-exim still missing after install" >&2; exit 1; }
echo "install-deps.sh: done"
