#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for tbpipe's `hydra/launcher=slurm` tests
# (tests/test_slurm.py) and for trying a Slurm sweep before taking it to a real cluster.
#
#   scripts/slurm-local.sh start    install (Debian's slurm-wlm + munge) if needed, then start
#                                   munged, slurmctld and slurmd; waits until `sinfo` shows the
#                                   node idle. Running it again changes nothing.
#   scripts/slurm-local.sh stop     stop the three daemons (jobs still running are killed)
#   scripts/slurm-local.sh status   `sinfo` and the daemons' process ids
#
# Run as root (CI and these machines run as root): it installs packages, writes
# /etc/slurm/slurm.conf, and runs slurmctld and slurmd as root (SlurmUser=root).
# The daemons listen on the address this host's name resolves to (127.0.0.1 on a machine
# whose /etc/hosts says so), not on every interface (CommunicationParameters below).
# Exit status: 0 when the node is idle in `sinfo` (or stopped, for `stop`); 1 with one line
# on stderr saying why when Slurm cannot be installed or started here.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by tbpipe scripts/slurm-local.sh"  # a slurm.conf without it is not ours
LOGS=/var/log/slurm
STATE=/var/lib/slurm
HOST=$(hostname -s)

say() { echo "slurm-local: $*"; }
fail() {
    echo "slurm-local: $*" >&2
    exit 1
}

need_root() {
    [ "$(id -u)" -eq 0 ] || fail "run as root (it installs Debian packages and starts system daemons)"
}

# Debian's packages; apt-get update only when something is missing.
install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || fail "slurm-wlm and munge are not installed and there is no apt-get here"
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null ||
        fail "apt-get install slurm-wlm munge failed"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_works; then
        return
    fi
    if [ ! -s /etc/munge/munge.key ]; then  # Debian's postinst makes one; a copied image may not
        mungekey --create --keyfile=/etc/munge/munge.key >/dev/null
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    say "starting munged (as the munge user)"
    runuser -u munge -- /usr/sbin/munged || fail "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do
        munge_works && return
        sleep 0.1
    done
    fail "munged started but munge -n | unmunge fails"
}

# slurm.conf for this node: CPUs and memory as slurmd sees them.
write_conf() {
    local node
    node=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //; s/ *$//')
    [ -n "$node" ] || fail "slurmd -C printed no node description"
    mkdir -p /etc/slurm "$LOGS" "$STATE/slurmctld" "$STATE/slurmd"
    cat >"$CONF.new" <<EOF
$MARK (start|stop); a single-node cluster.
ClusterName=tbpipe-local
SlurmctldHost=$HOST
# bind to the address $HOST resolves to, not to every interface
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
# a requeued job waits this long before it starts again (Slurm's default: 120 s)
AuthInfo=cred_expire=10
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
SchedulerType=sched/backfill
# look at the queue every 5 s (defaults: 60 s, backfill 30 s): a requeued job starts soon after
# its BeginTime, not up to a minute later
SchedulerParameters=sched_interval=5,bf_interval=5
ReturnToService=2
# no accounting database (slurmdbd): sacct has nothing to report
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=$HOST $node State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        rm -f "$CONF.new"
        fail "$CONF exists and was not written by this script; leaving it alone"
    fi
    if cmp -s "$CONF.new" "$CONF"; then
        rm -f "$CONF.new"
        return 1  # unchanged
    fi
    mv "$CONF.new" "$CONF"
    return 0
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_daemon() {  # pid file, name
    if alive "$1"; then
        say "stopping $2"
        kill "$(cat "$1")"
        for _ in $(seq 100); do
            alive "$1" || break
            sleep 0.1
        done
    fi
    rm -f "$1"
}

node_state() { sinfo -h -n "$HOST" -o %t 2>/dev/null | head -1; }

start() {
    need_root
    install
    start_munge
    if write_conf; then  # a new or changed slurm.conf: daemons started with the old one restart
        stop_daemon /run/slurmd.pid slurmd
        stop_daemon /run/slurmctld.pid slurmctld
    fi
    if ! alive /run/slurmctld.pid; then
        say "starting slurmctld"
        slurmctld || fail "slurmctld did not start (see $LOGS/slurmctld.log)"
    fi
    if ! alive /run/slurmd.pid; then
        say "starting slurmd"
        slurmd || fail "slurmd did not start (see $LOGS/slurmd.log)"
    fi
    local state=""
    for _ in $(seq 150); do
        state=$(node_state)
        case "$state" in
            idle | mix | alloc) break ;;
            down* | drain* | drng*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    case "$state" in
        idle | mix | alloc) say "node $HOST is $state"; sinfo ;;
        *) fail "node $HOST is '${state:-unknown}' after 30 s (see $LOGS/slurmctld.log and $LOGS/slurmd.log)" ;;
    esac
}

stop() {
    need_root
    stop_daemon /run/slurmd.pid slurmd
    stop_daemon /run/slurmctld.pid slurmctld
    if [ -s /run/munge/munged.pid ]; then
        stop_daemon /run/munge/munged.pid munged
    fi
    say "stopped"
}

status() {
    for daemon in slurmctld slurmd munge/munged; do
        pidfile=/run/$daemon.pid
        if alive "$pidfile"; then echo "${daemon#*/}: pid $(cat "$pidfile")"; else echo "${daemon#*/}: not running"; fi
    done
    sinfo 2>&1 || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) fail "usage: $0 start|stop|status" ;;
esac
