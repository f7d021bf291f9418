#!/usr/bin/env bash
# Sets up everything the server and the tests need on a Debian 12 machine (as root), idempotently:
# host packages, the Python venv, var/cti.toml with random secrets, Redis + PostgreSQL, the local
# Asterisk (Debian sid chroot), the database schema, demo data and placeholder prompts.
# Re-running it is cheap: each step checks what is already there.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
CONFIG=${CTI_CONFIG:-$ROOT/var/cti.toml}
SANDBOX=${CTI_SANDBOX:-/opt/cti-sandbox}
HOST_PACKAGES=(python3-venv debootstrap espeak-ng sox ffmpeg redis-server postgresql baresip-core sip-tester bc curl ca-certificates chromium)

log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }
[ "$(id -u)" = 0 ] || { echo "scripts/setup.sh must run as root (it installs packages and a chroot)" >&2; exit 1; }

host_packages() {
  local missing=() p
  for p in "${HOST_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && { log "host packages present"; return; }
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_env() {
  local stamp=$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
  [ -f "$stamp" ] && { log "venv up to date ($VENV)"; return; }
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test]"
  rm -f "$VENV"/.installed-*; touch "$stamp"
  log "venv ready: $("$VENV/bin/python" --version)"
}

random_secret() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))'; }

config_file() {
  [ -f "$CONFIG" ] && { log "config exists: $CONFIG"; return; }
  mkdir -p "$(dirname "$CONFIG")"
  install -m 600 /dev/null "$CONFIG"   # secrets: owner-only, without changing the script's umask
  cat > "$CONFIG" <<CONF
# Local development settings, written once by scripts/setup.sh with random secrets. Not in git.
[ami]
secret = "$(random_secret)"

[asterisk]
sip_secret = "$(random_secret)"

[database]
url = "sqlite+aiosqlite:///$ROOT/var/cti.sqlite3"

[paths]
media_dir = "$SANDBOX/media"

[security]
api_tokens = { "$(random_secret)" = "admin" }
CONF
  log "wrote $CONFIG (random AMI, SIP and API secrets)"
}

main() {
  host_packages
  python_env
  config_file
  export CTI_CONFIG=$CONFIG VENV CTI_SANDBOX=$SANDBOX
  bash "$ROOT/scripts/services.sh" install
  bash "$ROOT/scripts/services.sh" start
  bash "$ROOT/scripts/asterisk-sandbox.sh" setup
  bash "$ROOT/scripts/asterisk-sandbox.sh" start
  "$VENV/bin/cti" demo
}

main "$@"
