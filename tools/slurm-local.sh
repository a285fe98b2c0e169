#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, with accounting, to try and test the SLURM path
# (hydra/launcher=slurm) without a real cluster: docs/cluster.md.
#
#   tools/slurm-local.sh start     install what is missing (apt, as root), write the config for this
#                                  machine, start munged, MariaDB, slurmdbd, slurmctld and slurmd,
#                                  and wait until the node takes jobs; prints the SLURM_CONF to export
#   tools/slurm-local.sh stop      stop the daemons it started (by their pid files), last first
#   tools/slurm-local.sh status    each daemon's pid, the node's state; exit 0 if it takes jobs
#   tools/slurm-local.sh env       the line to eval: export SLURM_CONF=...
#
# What it writes is under SLURM_LOCAL_DIR (default /tmp/resnet-exp-slurm): slurm.conf,
# slurmdbd.conf, MariaDB's data and socket (its own server, on port SLURM_LOCAL_DB_PORT, default
# 3307: a MariaDB already on the machine is left alone), the daemons' logs (log/) and pid files
# (run/); outside it only munge's own places (/run/munge, and /etc/munge/munge.key where there is
# none), and only where no munged already answers (then that one is used). It never touches
# /etc/slurm: commands find this cluster through SLURM_CONF. Idempotent: start on a running cluster
# checks that it takes jobs and returns; stop on a stopped one does nothing. Start as root; status
# and env work for any user.
# One node, named after this host, with its CPUs (nproc) and memory (free, less 1 GB for the
# daemons), partition "debug"; ProctrackType=proctrack/linuxproc and TaskPlugin=task/none (no
# cgroups); accounting through slurmdbd into MariaDB, so sacct answers as on a real cluster, and
# enforced (account resnetexp, with root and the user who ran sudo): an unknown account or QOS is
# refused as a real cluster refuses it.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin  # the daemons, for a user whose PATH lacks them

dir=${SLURM_LOCAL_DIR:-/tmp/resnet-exp-slurm}
conf=$dir/slurm.conf
db_port=${SLURM_LOCAL_DB_PORT:-3307}
db_socket=$dir/mariadb/mysqld.sock
packages=(slurm-wlm munge slurmdbd mariadb-server)
wait_s=${SLURM_LOCAL_WAIT_S:-120}  # how long start waits for each daemon before it gives up

say() { echo "slurm-local: $*"; }
fail() { echo "slurm-local: error: $*" >&2; exit 1; }

alive() {  # alive NAME: the daemon NAME's pid file names a running process (of any user)
    local f=$dir/run/$1.pid
    [ -r "$f" ] && [ -s "$f" ] && [ -d "/proc/$(cat "$f")" ]
}

wait_for() {  # wait_for WHAT COMMAND...: poll COMMAND until it succeeds, at most wait_s seconds
    local what=$1 start=$SECONDS
    shift
    until "$@" >/dev/null 2>&1; do
        if (( SECONDS - start > wait_s )); then
            fail "$what did not come up within ${wait_s} s; its log is under $dir/log/"
        fi
        sleep 0.2
    done
}

install() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurm-wlm)
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmdbd >/dev/null || missing+=(slurmdbd)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    [ ${#missing[@]} -eq 0 ] && return
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        fail "${missing[*]} not installed, and apt-get as root is not available to install them (apt-get install ${packages[*]})"
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null; }
}

config_text() {  # the slurm.conf this script writes for this machine
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys those (the suite sets OMP_NUM_THREADS=1)
    mem_mb=$(( $(free -m | awk '/^Mem:/ {print $2}') - 1024 ))
    cat <<EOF
# Written by tools/slurm-local.sh for $host: one node, accounting through slurmdbd; every daemon
# reached at 127.0.0.1, so that no name lookup of this machine stands between them.
ClusterName=resnetexp
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations,limits,qos
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
SchedulerParameters=sched_interval=2
MinJobAge=300
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=1-00:00:00 State=UP
EOF
}

stale_config() {  # whether the running daemons' slurm.conf is not what this script writes now
    [ -f "$conf" ] && [ "$(config_text)" != "$(cat "$conf")" ]
}

write_config() {
    mkdir -p "$dir"/{log,run,state,spool,mariadb/data,munge}
    chmod 755 "$dir" "$dir/run" "$dir/log"
    if stale_config; then  # a config of an earlier version of this script: its daemons start again with this one
        say "the config changed: restarting slurmctld and slurmd with it"
        stop slurmd slurmctld
    fi
    config_text > "$conf.new"
    mv "$conf.new" "$conf"
    local pass=$dir/mariadb/slurm.pass
    [ -s "$pass" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pass")
    (umask 077 && cat > "$dir/slurmdbd.conf" <<EOF
# Written by tools/slurm-local.sh: slurmdbd into the MariaDB server it starts (TCP, its own port).
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$dir/log/slurmdbd.log
PidFile=$dir/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=$(cat "$pass")
StorageLoc=slurm_acct_db
EOF
    )
}

start_munge() {
    alive munged && return
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then  # a munged of the machine's own answers: use it
        rm -f "$dir/run/munged.pid"
        return
    fi
    [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key -f; }
    mkdir -p /run/munge && chown munge:munge /run/munge "$dir/munge"
    # as the munge user, as Debian's service runs it, its pid file and log in a folder it owns
    runuser -u munge -- munged --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log"
    wait_for munged test -s "$dir/munge/munged.pid"
    cp "$dir/munge/munged.pid" "$dir/run/munged.pid"
    wait_for munged sh -c 'munge -n | unmunge'
}

mariadb_client() { mariadb --socket="$db_socket" -u root "$@"; }

start_mariadb() {
    alive mariadb && return
    chown -R mysql:mysql "$dir/mariadb"
    if [ ! -d "$dir/mariadb/data/mysql" ]; then
        mariadb-install-db --user=mysql --datadir="$dir/mariadb/data" --auth-root-authentication-method=socket \
            --skip-test-db > "$dir/log/mariadb-install.log" 2>&1 \
            || fail "MariaDB's data folder could not be made: $dir/log/mariadb-install.log"
    fi
    rm -f "$db_socket"
    mariadbd --user=mysql --datadir="$dir/mariadb/data" --socket="$db_socket" --bind-address=127.0.0.1 \
        --port="$db_port" --pid-file="$dir/mariadb/mariadb.pid" --log-error="$dir/mariadb/error.log" \
        --innodb-buffer-pool-size=64M > /dev/null 2>&1 &
    wait_for "MariaDB (log: $dir/mariadb/error.log)" mariadb_client -e 'select 1'
    cp "$dir/mariadb/mariadb.pid" "$dir/run/mariadb.pid" && chmod 644 "$dir/run/mariadb.pid"
    mariadb_client -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$(cat "$dir/mariadb/slurm.pass")';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_daemon() {  # start_daemon NAME COMMAND...: a SLURM daemon, unless its pid file names a live one
    local name=$1
    shift
    alive "$name" && return
    "$@"
    wait_for "$name" alive "$name"
}

node_state() { SLURM_CONF=$conf sinfo -h -o %T 2>/dev/null | head -1; }
node_up() { case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac; }

accounts() {  # the cluster, its account and users in the accounting database (once)
    local user
    if [ -z "$(SLURM_CONF=$conf sacctmgr -n -P list cluster format=cluster)" ]; then
        SLURM_CONF=$conf sacctmgr -i add cluster resnetexp >/dev/null
    fi
    # as on a real cluster, a job needs an account its user belongs to (AccountingStorageEnforce)
    if [ -z "$(SLURM_CONF=$conf sacctmgr -n -P list account resnetexp format=account)" ]; then
        SLURM_CONF=$conf sacctmgr -i add account resnetexp cluster=resnetexp >/dev/null
    fi
    for user in root ${SUDO_USER:-}; do
        if [ -z "$(SLURM_CONF=$conf sacctmgr -n -P list user "$user" format=user)" ]; then
            SLURM_CONF=$conf sacctmgr -i add user "$user" account=resnetexp >/dev/null
        fi
    done
}

start() {
    [ "$(id -u)" = 0 ] || fail "start needs root (it starts munged, MariaDB and SLURM's daemons): sudo $0 start"
    install
    write_config
    start_munge
    start_mariadb
    # slurmdbd reads the slurmdbd.conf beside SLURM_CONF
    start_daemon slurmdbd env SLURM_CONF="$conf" slurmdbd
    wait_for slurmdbd env SLURM_CONF="$conf" sacctmgr -n list cluster
    accounts
    start_daemon slurmctld slurmctld -f "$conf"
    start_daemon slurmd slurmd -f "$conf"
    # a node that an earlier run left drained or down (its state is kept in state/) takes jobs again
    wait_for "the node's registration" sh -c "SLURM_CONF='$conf' sinfo -h -o %T | grep -q ."
    case "$(node_state)" in
        drain* | drng | down*) SLURM_CONF=$conf scontrol update NodeName="$(hostname -s)" State=RESUME ;;
    esac
    wait_for "the node (sinfo: idle, or running jobs)" node_up
    say "running: $(SLURM_CONF=$conf sinfo -h -o '%P %D %T %c CPUs %m MB' | head -1); slurm $(slurmctld -V | awk '{print $2}')"
    echo "export SLURM_CONF=$conf"
}

stop() {  # stop [NAME...]: the daemons named, or all that start started
    local name pid start names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(slurmd slurmctld slurmdbd mariadb munged)
    for name in "${names[@]}"; do
        if alive "$name"; then
            pid=$(cat "$dir/run/$name.pid")
            kill "$pid" 2>/dev/null || true  # gone between the check and now: nothing to stop
            # wait for it to go (a daemon that will not, after wait_s, is killed)
            start=$SECONDS
            while [ -d "/proc/$pid" ]; do
                if (( SECONDS - start > wait_s )); then kill -9 "$pid" 2>/dev/null || true; fi
                sleep 0.1
            done
            say "stopped $name ($pid)"
        fi
        rm -f "$dir/run/$name.pid"
    done
}

status() {
    local name ok=0
    for name in munged mariadb slurmdbd slurmctld slurmd; do
        if alive "$name"; then
            say "$name: running ($(cat "$dir/run/$name.pid"))"
        elif [ "$name" = munged ] && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
            say "munged: the machine's own"
        else
            say "$name: not running"
            ok=1
        fi
    done
    if [ $ok = 0 ] && node_up; then say "node: $(SLURM_CONF=$conf sinfo -h -o '%n %T' | head -1)"; else ok=1; fi
    if stale_config; then say "config: written by an earlier version of this script; start applies this one"; ok=1; fi
    return $ok
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$conf" ;;
    *) echo "usage: tools/slurm-local.sh start|stop|status|env" >&2; exit 2 ;;
esac
