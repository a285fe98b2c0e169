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
# Everything it writes is under SLURM_LOCAL_DIR (default /tmp/resnet-exp-slurm): slurm.conf,
# slurmdbd.conf, the MariaDB data, the daemons' logs (log/) and pid files (run/). It never touches
# /etc/slurm: commands find this cluster through SLURM_CONF. Idempotent: start on a running cluster
# checks that it takes jobs and returns; stop on a stopped one does nothing.
# One node, named after this host, with its CPUs (nproc) and memory (free, less 1 GB for the
# daemons), partition "debug"; ProctrackType=proctrack/linuxproc and TaskPlugin=task/none (no
# cgroups); accounting through slurmdbd into MariaDB, so sacct answers as on a real cluster, and
# enforced (account resnetexp, with root and the user who ran sudo): an unknown account or QOS is
# refused as a real cluster refuses it.
set -euo pipefail

dir=${SLURM_LOCAL_DIR:-/tmp/resnet-exp-slurm}
conf=$dir/slurm.conf
packages=(slurm-wlm munge slurmdbd mariadb-server)
wait_s=${SLURM_LOCAL_WAIT_S:-120}  # how long start waits for each daemon before it gives up

say() { echo "slurm-local: $*"; }
fail() { echo "slurm-local: error: $*" >&2; exit 1; }

alive() {  # alive NAME: the daemon NAME's pid file names a running process
    local f=$dir/run/$1.pid
    [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
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

write_config() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(( $(free -m | awk '/^Mem:/ {print $2}') - 1024 ))
    mkdir -p "$dir"/{log,run,state,spool,mysql}
    cat > "$conf.new" <<EOF
# Written by tools/slurm-local.sh for $host: one node, accounting through slurmdbd.
ClusterName=resnetexp
SlurmctldHost=$host
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
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$conf.new" "$conf"
    cat > "$dir/slurmdbd.conf" <<EOF
# Written by tools/slurm-local.sh: slurmdbd into the MariaDB server it starts.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$dir/log/slurmdbd.log
PidFile=$dir/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=root
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$dir/slurmdbd.conf"
}

start_munge() {
    alive munged && return
    mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
    [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key -f; }
    # as the munge user, as Debian's service runs it; its pid file is where the script looks
    rm -f "$dir/run/munged.pid"
    runuser -u munge -- munged --pid-file="$dir/run/munged.pid.munge" --log-file="$dir/log/munged.log" 2>/dev/null \
        || munged --force --pid-file="$dir/run/munged.pid.munge" --log-file="$dir/log/munged.log"
    wait_for munged test -s "$dir/run/munged.pid.munge"
    cp "$dir/run/munged.pid.munge" "$dir/run/munged.pid"
    wait_for munged sh -c 'munge -n | unmunge'
}

start_mariadb() {
    alive mariadb && return
    mkdir -p "$dir/log/mariadb" /run/mysqld
    chown -R mysql:mysql "$dir/mysql" "$dir/log/mariadb" /run/mysqld
    if [ ! -d "$dir/mysql/mysql" ]; then
        mariadb-install-db --user=mysql --datadir="$dir/mysql" --auth-root-authentication-method=socket \
            --skip-test-db > "$dir/log/mariadb/install.log" 2>&1 \
            || fail "MariaDB's data folder could not be made: $dir/log/mariadb/install.log"
    fi
    rm -f /run/mysqld/mysqld.sock /run/mysqld/resnet-exp.pid
    # the default socket, where slurmdbd (StorageHost=localhost) finds the server
    mariadbd --user=mysql --datadir="$dir/mysql" --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 \
        --port=3306 --pid-file=/run/mysqld/resnet-exp.pid --log-error="$dir/log/mariadb/error.log" \
        --innodb-buffer-pool-size=64M > /dev/null 2>&1 &
    wait_for MariaDB mariadb -u root -e 'select 1'
    cp /run/mysqld/resnet-exp.pid "$dir/run/mariadb.pid"
}

start_daemon() {  # start_daemon NAME COMMAND...: a SLURM daemon, unless its pid file names a live one
    local name=$1
    shift
    alive "$name" && return
    "$@"
    wait_for "$name" alive "$name"
}

node_state() { SLURM_CONF=$conf sinfo -h -o %T 2>/dev/null | head -1; }
node_idle() { [ "$(node_state)" = idle ]; }
node_up() { case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac; }

start() {
    install
    write_config
    start_munge
    start_mariadb
    # slurmdbd reads the slurmdbd.conf beside SLURM_CONF
    start_daemon slurmdbd env SLURM_CONF="$conf" slurmdbd
    wait_for slurmdbd env SLURM_CONF="$conf" sacctmgr -n list cluster
    if [ -z "$(SLURM_CONF=$conf sacctmgr -n -P list cluster format=cluster)" ]; then
        SLURM_CONF=$conf sacctmgr -i add cluster resnetexp >/dev/null
    fi
    # as on a real cluster, a job needs an account its user belongs to (AccountingStorageEnforce):
    # account resnetexp, with root and the user who ran sudo
    if [ -z "$(SLURM_CONF=$conf sacctmgr -n -P list account resnetexp format=account)" ]; then
        SLURM_CONF=$conf sacctmgr -i add account resnetexp cluster=resnetexp >/dev/null
    fi
    local user
    for user in root ${SUDO_USER:-}; do
        if [ -z "$(SLURM_CONF=$conf sacctmgr -n -P list user "$user" format=user)" ]; then
            SLURM_CONF=$conf sacctmgr -i add user "$user" account=resnetexp >/dev/null
        fi
    done
    start_daemon slurmctld slurmctld -f "$conf"
    start_daemon slurmd slurmd -f "$conf"
    wait_for "the node (sinfo: idle, or running jobs)" node_up
    say "running: $(SLURM_CONF=$conf sinfo -h -o '%P %D %T %c CPUs %m MB' | head -1); slurm $(slurmctld -V | awk '{print $2}')"
    echo "export SLURM_CONF=$conf"
}

stop() {
    local name pid
    for name in slurmd slurmctld slurmdbd mariadb munged; do
        if alive "$name"; then
            pid=$(cat "$dir/run/$name.pid")
            kill "$pid"
            # wait for it to go (a daemon that will not, after wait_s, is killed)
            local start=$SECONDS
            while kill -0 "$pid" 2>/dev/null; do
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
        if alive "$name"; then say "$name: running ($(cat "$dir/run/$name.pid"))"; else say "$name: not running"; ok=1; fi
    done
    if [ $ok = 0 ] && node_up; then say "node: $(SLURM_CONF=$conf sinfo -h -o '%n %T' | head -1)"; else ok=1; fi
    return $ok
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$conf" ;;
    *) echo "usage: tools/slurm-local.sh start|stop|status|env" >&2; exit 2 ;;
esac
