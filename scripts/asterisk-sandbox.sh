#!/usr/bin/env bash
# A real Asterisk (Debian sid) in a debootstrap chroot on a Debian 12 host, for development and the
# tests in tests/real. No Docker, no systemd: the chroot shares the host's network, so AMI is on
# 127.0.0.1:5038 and SIP on 127.0.0.1:5060 (whatever var/cti.toml says), and Asterisk reaches our
# FastAGI server on the host.
#
# Usage: scripts/asterisk-sandbox.sh COMMAND   (as root; no stdin needed, so CI can run it)
#   setup      host packages, sid chroot, Asterisk + sounds, rendered config, media, phone configs
#   start      start Asterisk (by PID file); prints its version, fails loudly with the log tail
#   stop       stop the baresip phones, then Asterisk
#   restart    stop + start
#   kill       SIGKILL Asterisk (a crash: no hang-ups sent, sockets just close); 'start' brings it back
#   reload     render the config again from the settings, install it, 'core reload'
#   status     what runs, and the registered phones
#   phones [start|stop]   baresip as caller, agent1, agent2 (registered; ctrl_tcp on 127.0.0.1:4440-4442)
#   call NUMBER [DIGITS]   a simulated caller (Local channel into [cti-sim]) dials NUMBER and, after
#              CTI_CALL_DELAY seconds (default 4), presses DIGITS
#   destroy    stop, unmount everything under the sandbox, then delete it
#
# Everything is cached: 'setup' from nothing takes about 35 s (debootstrap 21 s, apt 12 s; host packages
# already there), again under 1 s; 'start' boots Asterisk in about 0.6 s.
#
# Config: the Asterisk configuration is rendered from asterisk-config/templates with the project's
# settings ($CTI_CONFIG, default var/cti.toml, as scripts/setup.sh writes it) by cti.asterisk_config.
# SIP passwords are derived from asterisk.sip_secret; the phones' configs use the same derivation.
#
# Environment: CTI_CONFIG, CTI_SANDBOX (/opt/cti-sandbox), VENV (.venv), CTI_SANDBOX_AGENTS (4),
# CTI_SANDBOX_MIRROR (http://deb.debian.org/debian), CTI_CALL_DELAY (4).
#
# Layout of $CTI_SANDBOX: sid/ the chroot; conf/ the rendered config (copied to sid/etc/asterisk);
# media/ bind-mounted at the SAME path inside the chroot, so a path the server writes (prompts) or
# reads (recordings) is the path Asterisk uses; phones/ baresip configs; run/ PID files and logs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SANDBOX=${CTI_SANDBOX:-/opt/cti-sandbox}
SANDBOX=${SANDBOX%/}
VENV=${VENV:-$ROOT/.venv}
export CTI_CONFIG=${CTI_CONFIG:-$ROOT/var/cti.toml}
AGENTS=${CTI_SANDBOX_AGENTS:-4}
MIRROR=${CTI_SANDBOX_MIRROR:-http://deb.debian.org/debian}
CALL_DELAY=${CTI_CALL_DELAY:-4}

readonly R=$SANDBOX/sid MEDIA=$SANDBOX/media CONF=$SANDBOX/conf PHONES=$SANDBOX/phones RUN=$SANDBOX/run
readonly HOST_PACKAGES=(debootstrap baresip-core sip-tester espeak-ng sox bc)
readonly CHROOT_PACKAGES=(asterisk asterisk-core-sounds-en-wav asterisk-moh-opsound-wav)
# asterisk-core-sounds-fr-wav only holds the files (fr_CA_f_June/); asterisk-core-sounds-fr, a mere
# Recommends, makes the sounds/fr link that language "fr" needs.
readonly OPTIONAL_CHROOT_PACKAGES=(asterisk-core-sounds-fr-wav asterisk-core-sounds-fr)
readonly PHONE_NAMES=(caller agent1 agent2)
readonly BOOT_TIMEOUT=20 REGISTER_TIMEOUT=15

log() { printf '[sandbox %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { echo "asterisk-sandbox.sh: $*" >&2; exit 1; }
need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (chroot, mounts, packages)"; }
elapsed() { printf '%.1f' "$(bc <<<"${EPOCHREALTIME} - $1")"; }
timed() {
    local what=$1 t0=$EPOCHREALTIME
    shift
    "$@"
    log "$what: done in $(elapsed "$t0") s"
}
ast() { chroot "$R" /usr/sbin/asterisk -rx "$1"; }

# Only one instance at a time works on a sandbox (parallel 'make' targets, a test and a developer).
lock() {
    mkdir -p "$(dirname "$SANDBOX")"
    exec 9>"$SANDBOX.lock"
    flock -w 120 9 || die "another asterisk-sandbox.sh holds $SANDBOX.lock"
}

# --- host -----------------------------------------------------------------------------------------

host_packages() {
    local missing=() p
    for p in "${HOST_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if ((${#missing[@]})); then
        log "installing host packages: ${missing[*]}"
        apt-get update -qq </dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            </dev/null >/dev/null
    fi
    log "host: debootstrap $(dpkg-query -W -f='${Version}' debootstrap)," \
        "baresip $(dpkg-query -W -f='${Version}' baresip-core), sipp $(dpkg-query -W -f='${Version}' sip-tester)"
}

python_ready() {
    [[ -x $VENV/bin/python ]] || die "no Python venv at $VENV: run scripts/setup.sh (or set VENV)"
    "$VENV/bin/python" -c 'import cti.asterisk_config' 2>/dev/null ||
        die "$VENV cannot import cti.asterisk_config: run scripts/setup.sh (pip install -e .)"
    [[ -f $CTI_CONFIG ]] || die "no settings file $CTI_CONFIG: run scripts/setup.sh (it writes random secrets)"
}

# --- chroot ---------------------------------------------------------------------------------------

mounts_under() { awk -v root="$1/" 'index($2 "/", root) == 1 { print $2 }' /proc/mounts | sort -r; }

make_chroot() {
    if [[ -f $R/.cti-debootstrap-ok ]]; then
        log "chroot exists: $R"
        return
    fi
    [[ -z $(mounts_under "$R") ]] || die "half-made chroot $R has mounts inside; run '$0 destroy' first"
    rm -rf --one-file-system "$R"
    mkdir -p "$R"
    log "debootstrap --variant=minbase sid from $MIRROR (about 25 s)"
    debootstrap --variant=minbase sid "$R" "$MIRROR" </dev/null >"$SANDBOX/debootstrap.log" 2>&1 ||
        { tail -n 30 "$SANDBOX/debootstrap.log" >&2; die "debootstrap failed (log $SANDBOX/debootstrap.log)"; }
    touch "$R/.cti-debootstrap-ok"
}

prepare_chroot() {
    cp /etc/resolv.conf "$R/etc/resolv.conf"                     # apt in the chroot resolves names
    printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"     # postinst must not start a service
    chmod +x "$R/usr/sbin/policy-rc.d"
    # The mirror's sid Release file can be past its Valid-Until date: apt would refuse it.
    echo 'Acquire::Check-Valid-Until "false";' >"$R/etc/apt/apt.conf.d/99cti-no-check-valid-until"
    echo 'APT::Install-Recommends "false";' >"$R/etc/apt/apt.conf.d/99cti-no-recommends"
    mkdir -p "$R/run/asterisk"                                    # no systemd-tmpfiles in a chroot
}

chroot_apt() {
    chroot "$R" env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
        apt-get -o Dpkg::Use-Pty=0 -q "$@" </dev/null
}

chroot_has() { chroot "$R" dpkg -s "$1" >/dev/null 2>&1; }

# /proc is mounted only while apt and dpkg run; a trap takes it away whatever happens.
with_proc() {
    mountpoint -q "$R/proc" || mount -t proc proc "$R/proc"
    trap 'mountpoint -q "$R/proc" && umount "$R/proc"' EXIT
    "$@"
    umount "$R/proc"
    trap - EXIT
}

asterisk_installed() {
    local p
    for p in "${CHROOT_PACKAGES[@]}"; do chroot_has "$p" || return 1; done
    for p in "${OPTIONAL_CHROOT_PACKAGES[@]}"; do chroot_has "$p" || [[ -f $R/.cti-unavailable-$p ]] || return 1; done
}

install_asterisk() {
    if asterisk_installed; then
        log "asterisk installed: $(chroot "$R" /usr/sbin/asterisk -V)"
        return
    fi
    with_proc apt_install_asterisk
    log "installed: $(chroot "$R" /usr/sbin/asterisk -V)"
}

apt_install_asterisk() {
    local wanted=("${CHROOT_PACKAGES[@]}") p
    chroot_apt update >"$SANDBOX/apt.log" 2>&1 || { tail -n 20 "$SANDBOX/apt.log" >&2; die "apt-get update failed in the chroot"; }
    for p in "${OPTIONAL_CHROOT_PACKAGES[@]}"; do
        if [[ -n $(chroot "$R" apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)"') ]]; then
            wanted+=("$p")
        else
            log "$p is not in sid today: skipped"
            touch "$R/.cti-unavailable-$p"
        fi
    done
    log "apt-get install ${wanted[*]} (in the chroot)"
    chroot_apt install -y --no-install-recommends "${wanted[@]}" >>"$SANDBOX/apt.log" 2>&1 ||
        { tail -n 30 "$SANDBOX/apt.log" >&2; die "apt-get install failed in the chroot (sid moves: see $SANDBOX/apt.log)"; }
    chroot_apt clean
    # keep the package's 100+ sample configs aside: /etc/asterisk holds only what we render
    [[ -d $R/etc/asterisk.dist ]] || mv "$R/etc/asterisk" "$R/etc/asterisk.dist"
    mkdir -p "$R/etc/asterisk"
}

# --- configuration ----------------------------------------------------------------------------------

# One Python run renders Asterisk's config and the phones' configs from the same settings, so the
# SIP passwords are derived once, in one way (cti.asterisk_config.sip_password).
render() {
    python_ready
    mkdir -p "$CONF" "$PHONES" "$MEDIA/sandbox"
    chmod 700 "$CONF" "$PHONES"
    "$VENV/bin/python" - "$CONF" "$PHONES" "$MEDIA" "$AGENTS" "${PHONE_NAMES[@]}" <<'PY'
import os
import sys
from pathlib import Path

from cti.asterisk_config import render_asterisk_config, sip_password
from cti.settings import load_settings

conf, phones, media, agents, *names = sys.argv[1:]
settings = load_settings()
if settings.paths.media_dir != Path(media):
    sys.exit(f"settings paths.media_dir is {settings.paths.media_dir}, but the sandbox shares {media} with "
             f"Asterisk: set [paths] media_dir = \"{media}\" in {os.environ['CTI_CONFIG']}")
secret = settings.asterisk.sip_secret.get_secret_value()
written = render_asterisk_config(settings, Path(conf), sip_secret=secret, agents=int(agents))
print(f"rendered {len(written)} files into {conf}")

host, _, port = settings.asterisk.sip_bind.rpartition(":")
registrar = f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
for index, name in enumerate(names):
    folder = Path(phones, name)
    folder.mkdir(parents=True, exist_ok=True)
    heard = Path(media, "sandbox", f"heard-{name}")
    heard.mkdir(parents=True, exist_ok=True)
    source = Path(media, "sandbox", f"{name}.wav")
    (folder / "config").write_text("\n".join([
        "poll_method epoll", "net_interface 127.0.0.1", "net_prefer_ipv6 no",
        f"sip_listen 127.0.0.1:{5070 + 10 * index}",   # baresip also binds TCP on port + 1
        "sip_trans_def udp", "call_local_timeout 120", "call_max_calls 4",
        "audio_player alsa,null", f"audio_source aufile,{source}", "audio_alert alsa,null",
        "ausrc_srate 8000", "auplay_srate 8000", "ausrc_channels 1", "auplay_channels 1",
        "audio_buffer 20-160", f"rtp_ports {30000 + 100 * index}-{30099 + 100 * index}", "rtcp_mux no",
        "jitter_buffer_delay 5-10", "module_path /usr/lib/baresip/modules",
        "module g711.so", "module alsa.so", "module aufile.so", "module sndfile.so",
        "module_tmp uuid.so", "module_tmp account.so", "module_app menu.so", "module_app ctrl_tcp.so",
        f"ctrl_tcp_listen 127.0.0.1:{4440 + index}", f"snd_path {heard}", "",
    ]))
    answer = "manual" if name == "caller" else "auto"
    accounts = folder / "accounts"
    accounts.touch(mode=0o600)
    accounts.write_text(
        f"<sip:{name}@{registrar}>;auth_user={name};auth_pass={sip_password(secret, name)};"
        f"outbound=\"sip:{registrar}\";regint=300;answermode={answer};audio_codecs=PCMU\n")
print(f"phone configs for {', '.join(names)} in {phones}")
PY
}

install_config() {
    local file
    for file in "$R"/etc/asterisk/*.conf; do
        [[ -e $file && ! -e $CONF/$(basename "$file") ]] && rm -f "$file"   # a template that went away
    done
    cp -p "$CONF"/*.conf "$R/etc/asterisk/"
}

# --- media ----------------------------------------------------------------------------------------

mount_media() {
    mkdir -p "$MEDIA/prompts" "$MEDIA/recordings" "$R$MEDIA"
    mountpoint -q "$R$MEDIA" || mount --bind "$MEDIA" "$R$MEDIA"
}

speak() {   # speak FILE PADDING_SECONDS TEXT: 8 kHz mono 16-bit, what baresip's aufile expects
    local target=$1 pad=$2 text=$3
    [[ -s $target ]] && return
    espeak-ng -v en-us -s 150 -w "$target.tmp.wav" "$text"
    # aufile hangs up the call at the end of its file: pad with silence
    sox "$target.tmp.wav" -r 8000 -c 1 -b 16 -e signed-integer "$target" pad 0.5 "$pad"
    rm -f "$target.tmp.wav"
}

make_media() {
    mkdir -p "$MEDIA/sandbox"
    speak "$MEDIA/sandbox/caller.wav" 30 \
        "Hello, this is Carol calling about my order number one two three four. Please call me back tomorrow morning. Thank you."
    local name
    for name in "${PHONE_NAMES[@]:1}"; do
        speak "$MEDIA/sandbox/$name.wav" 120 "This is ${name/agent/agent }. How can I help you today?"
    done
}

# --- run control ----------------------------------------------------------------------------------

ast_pid() {
    local pid
    pid=$(cat "$RUN/asterisk.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

require_setup() {
    [[ -x $R/usr/sbin/asterisk && -f $R/etc/asterisk/asterisk.conf ]] || die "no sandbox in $SANDBOX: run '$0 setup'"
}

# The AMI and SIP ports of the installed configuration (they come from the settings).
config_ports() {
    awk '/^port = / { print $3 }' "$R/etc/asterisk/manager.conf"
    awk '/^bind = / { n = split($3, part, ":"); print part[n] }' "$R/etc/asterisk/pjsip.conf"
}

port_owner() { ss -Hlnptu "sport = :$1" 2>/dev/null | head -n 1; }

boot_failed() {
    echo "asterisk-sandbox.sh: Asterisk did not boot: $1" >&2
    echo "--- $RUN/asterisk.out (last 30 lines)" >&2
    grep -v 'Remote UNIX connection' "$RUN/asterisk.out" 2>/dev/null | tail -n 30 >&2 || true
    echo "--- $R/var/log/asterisk/messages.log (last 30 lines)" >&2
    grep -v 'Remote UNIX connection' "$R/var/log/asterisk/messages.log" 2>/dev/null | tail -n 30 >&2 || true
    exit 1
}

start_asterisk() {
    require_setup
    mkdir -p "$RUN" "$R/run/asterisk"
    mount_media
    local pid
    if pid=$(ast_pid); then
        log "asterisk already running (pid $pid): $(ast 'core show version' | head -n 1)"
        if config_changed; then reload_running "the rendered configuration changed: reloaded"; fi
        return
    fi
    local port
    for port in $(config_ports); do
        [[ -z $(port_owner "$port") ]] || die "port $port is taken by another process: $(port_owner "$port")"
    done
    local t0=$EPOCHREALTIME deadline=$((SECONDS + BOOT_TIMEOUT))
    setsid chroot "$R" /usr/sbin/asterisk -f -n -q >"$RUN/asterisk.out" 2>&1 </dev/null 9>&- &
    echo $! >"$RUN/asterisk.pid"   # chroot execs asterisk: this is Asterisk's own PID
    until ast 'core waitfullybooted' >/dev/null 2>&1; do
        ast_pid >/dev/null || boot_failed "the process exited"
        ((SECONDS < deadline)) || boot_failed "not fully booted after ${BOOT_TIMEOUT} s"
        sleep 0.1
    done
    log "asterisk up (pid $(ast_pid)) in $(elapsed "$t0") s: $(ast 'core show version' | head -n 1)"
    config_digest >"$RUN/loaded-config"
    check_running_config
}

config_digest() { cat "$R"/etc/asterisk/*.conf | sha256sum | cut -c1-16; }

# 'setup' may have rendered new settings (a new secret, another AGI port) while Asterisk runs.
config_changed() { [[ $(config_digest) != "$(cat "$RUN/loaded-config" 2>/dev/null)" ]]; }

reload_running() {
    ast 'core reload' >/dev/null
    config_digest >"$RUN/loaded-config"
    log "${1:-configuration reloaded}"
}

# The rendered config must have loaded: a missing piece here fails now, not in a test later.
check_running_config() {
    local problems=() module
    for module in res_pjsip.so res_agi.so app_queue.so res_musiconhold.so app_senddtmf.so; do
        has "module show like $module" "^$module .* Running" || problems+=("module $module is not running")
    done
    has 'manager show settings' 'Manager \(AMI\): +Yes' || problems+=("AMI is not enabled")
    has 'manager show users' '^1 manager users configured' || problems+=("not exactly one AMI user")
    has 'dialplan show cti-sim' "'s' =>" || problems+=("dialplan context cti-sim is missing")
    has 'pjsip show endpoints' '^ Endpoint: +caller ' || problems+=("PJSIP endpoint 'caller' is missing")
    ((${#problems[@]} == 0)) || boot_failed "$(IFS=';'; echo "${problems[*]}")"
    log "$(ast 'module show like .so' | tail -n 1);" \
        "$(ast 'pjsip show endpoints' | grep -c -E '^ Endpoint: +[a-z]') PJSIP endpoints"
}

# has COMMAND REGEX: does the CLI's answer match? (the output is read whole: 'grep -q' in a pipe
# would close it early, and with pipefail the CLI's SIGPIPE would count as a failure)
has() {
    local output
    output=$(ast "$1") || return 1
    grep -q -E -- "$2" <<<"$output"
}

stop_asterisk() {
    local pid
    pid=$(ast_pid) || { log "asterisk not running"; rm -f "$RUN/asterisk.pid"; return 0; }
    ast 'core stop now' >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        sleep 1
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$RUN/asterisk.pid"
    log "asterisk stopped (pid $pid)"
}

kill_asterisk() {
    local pid
    pid=$(ast_pid) || { log "asterisk not running"; return 0; }
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$RUN/asterisk.pid"
    log "asterisk killed (pid $pid)"
}

reload_asterisk() {
    render
    install_config
    if ast_pid >/dev/null; then
        reload_running
    else
        log "configuration rendered; asterisk is not running"
    fi
}

# --- phones ---------------------------------------------------------------------------------------

phone_pid() {
    local pid
    pid=$(cat "$RUN/baresip-$1.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# A fresh log per start, so an old contact left in Asterisk (regint 300 s) cannot pass for a registration.
registered() {
    local name count=0
    for name in "${PHONE_NAMES[@]}"; do grep -q ' 200 OK ' "$RUN/baresip-$name.log" 2>/dev/null && count=$((count + 1)); done
    echo "$count"
}

refused() { grep -h -E ' (401|403|404) ' "$RUN"/baresip-*.log 2>/dev/null || true; }

start_phones() {
    ast_pid >/dev/null || die "asterisk is not running: '$0 start' first"
    [[ -f $PHONES/caller/accounts ]] || die "no phone configs in $PHONES: run '$0 setup'"
    mkdir -p "$RUN"
    local name
    for name in "${PHONE_NAMES[@]}"; do
        if phone_pid "$name" >/dev/null; then
            # a phone started before its config was rendered again holds stale credentials: restart it
            [[ $PHONES/$name/accounts -nt $RUN/baresip-$name.pid ]] || continue
            stop_phone "$name"
        fi
        setsid baresip -f "$PHONES/$name" >"$RUN/baresip-$name.log" 2>&1 </dev/null 9>&- &
        echo $! >"$RUN/baresip-$name.pid"
    done
    local deadline=$((SECONDS + REGISTER_TIMEOUT))
    until (($(registered) >= ${#PHONE_NAMES[@]})); do
        if ((SECONDS >= deadline)) || [[ -n $(refused) ]]; then
            for name in "${PHONE_NAMES[@]}"; do echo "--- $RUN/baresip-$name.log" >&2; tail -n 15 "$RUN/baresip-$name.log" >&2; done
            die "only $(registered) of ${#PHONE_NAMES[@]} phones registered after ${REGISTER_TIMEOUT} s"
        fi
        sleep 0.2
    done
    log "phones registered: ${PHONE_NAMES[*]} (ctrl_tcp 127.0.0.1:4440-$((4440 + ${#PHONE_NAMES[@]} - 1)))"
}

stop_phone() {
    local pid
    if pid=$(phone_pid "$1"); then
        kill "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        log "baresip $1 stopped (pid $pid)"
    fi
    rm -f "$RUN/baresip-$1.pid"
}

stop_phones() {
    local name
    for name in "${PHONE_NAMES[@]}"; do stop_phone "$name"; done
}

# --- a simulated call ---------------------------------------------------------------------------------

simulated_call() {
    local number=${1:?usage: $0 call NUMBER [DIGITS]} digits=${2:-}
    [[ $number =~ ^\+?[0-9]+$ ]] || die "NUMBER must be digits (optionally with a leading +)"
    [[ $digits =~ ^[0-9*#wW]*$ ]] || die "DIGITS may hold 0-9 * # and w (a 0.5 s pause)"
    ast_pid >/dev/null || die "asterisk is not running: '$0 start' first"
    local context pauses=""
    context=$("$VENV/bin/python" -c 'from cti.settings import load_settings; print(load_settings().asterisk.inbound_context)')
    [[ -n $digits ]] && pauses=$(printf 'w%.0s' $(seq 1 $((CALL_DELAY * 2))))
    local target=s
    [[ -n $digits ]] && target="d$pauses$digits"
    ast "channel originate Local/$number@$context extension $target@cti-sim" >/dev/null
    log "calling $number in [$context]$([[ -n $digits ]] && echo ", pressing $digits after ${CALL_DELAY} s"); follow it in $R/var/log/asterisk/messages.log"
}

# --- status and destroy -----------------------------------------------------------------------------

status() {
    local pid name
    if pid=$(ast_pid); then
        log "asterisk running (pid $pid): $(ast 'core show version' | head -n 1)"
        ast 'core show uptime' | sed 's/^/    /'
        ast 'pjsip show contacts' | grep -E '^ *Contact: +[a-z]' | sed 's/^ */    /' || true
    else
        log "asterisk not running"
    fi
    for name in "${PHONE_NAMES[@]}"; do
        pid=$(phone_pid "$name") && log "baresip $name running (pid $pid)"
    done
    mounts_under "$R" | sed 's/^/    mounted: /'
}

destroy() {   # NEVER delete the chroot while something is mounted inside it: host files would go too
    stop_phones
    stop_asterisk
    local mount
    for mount in $(mounts_under "$R"); do umount "$mount" || umount -l "$mount"; done
    [[ -z $(mounts_under "$R") ]] || die "still mounted under $R, not deleting: $(mounts_under "$R" | tr '\n' ' ')"
    rm -rf --one-file-system "$SANDBOX"
    rm -f "$SANDBOX.lock"
    log "removed $SANDBOX"
}

setup() {
    local t0=$EPOCHREALTIME
    mkdir -p "$SANDBOX"
    timed "host packages" host_packages
    python_ready
    timed "sid chroot" make_chroot
    prepare_chroot
    timed "asterisk packages" install_asterisk
    timed "configuration" render
    install_config
    mount_media
    timed "media" make_media
    log "setup done in $(elapsed "$t0") s (chroot $(du -shx "$R" 2>/dev/null | cut -f1))"
}

main() {
    local command=${1:-}
    [[ $# -gt 0 ]] && shift
    case $command in
        setup) need_root; lock; setup ;;
        start) need_root; lock; start_asterisk ;;
        stop) need_root; lock; stop_phones; stop_asterisk ;;
        restart) need_root; lock; stop_phones; stop_asterisk; start_asterisk ;;
        kill) need_root; lock; kill_asterisk ;;
        reload) need_root; lock; reload_asterisk ;;
        phones)
            need_root; lock
            case ${1:-start} in start) start_phones ;; stop) stop_phones ;; *) die "usage: $0 phones [start|stop]" ;; esac ;;
        call) need_root; simulated_call "$@" ;;
        status) need_root; status ;;
        destroy) need_root; lock; destroy ;;
        *) sed -n '/^# Usage/,/^# Everything/p' "$0" >&2; exit 2 ;;
    esac
}

main "$@"
