#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests and for trying `scaletune submit`
# without a cluster. Uses Debian's slurm-wlm and munge; needs root; no systemd required.
#
#   scripts/slurm-local.sh start    install if needed, configure, start munged/slurmctld/slurmd,
#                                   wait until the node is idle
#   scripts/slurm-local.sh stop     stop the daemons
#   scripts/slurm-local.sh env      print `export SLURM_CONF=...` for clients (sbatch, squeue, ...)
#
# The cluster lives in $SCALETUNE_SLURM_DIR (default /var/tmp/scaletune-slurm); /etc/slurm is left
# alone, so clients need SLURM_CONF (see `env`). The node advertises $SCALETUNE_SLURM_GPUS fake GPUs
# (default 2): GRES File= entries pointing at /dev/null, because a GPU GRES without files drains
# the node in Slurm 22.05 and jobs then get CUDA_VISIBLE_DEVICES as on a real GPU node.
set -euo pipefail

dir=${SCALETUNE_SLURM_DIR:-/var/tmp/scaletune-slurm}
gpus=${SCALETUNE_SLURM_GPUS:-2}
conf=$dir/slurm.conf

log() { echo "slurm-local: $*" >&2; }

install_packages() {
  local missing=()
  for p in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -q -o DPkg::Lock::Timeout=600
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout=600 "${missing[@]}"
  fi
}

start_munge() {
  # munged refuses to run as root when its directories belong to munge: run it as munge.
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0700 /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 50); do
      munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
      sleep 0.1
    done
  fi
  munge -n | unmunge >/dev/null || { log "munged did not start"; exit 1; }
}

write_config() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/dev"
  local node cpus memory
  node=$(hostname -s)
  cpus=$(nproc)
  # slurmd -C reports the node's real size; keep a little memory back for the daemons.
  memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  memory=$(( memory > 1024 ? memory - 512 : memory ))
  local gres_line="" gres_node=""
  if [ "$gpus" -gt 0 ]; then
    for i in $(seq 0 $((gpus - 1))); do ln -sf /dev/null "$dir/dev/nvidia$i"; done
    gres_line="NodeName=$node Name=gpu File=$dir/dev/nvidia[0-$((gpus - 1))]"
    gres_node="Gres=gpu:$gpus"
  fi
  cat > "$conf" <<EOF
# Written by scripts/slurm-local.sh: a single-node test cluster.
ClusterName=scaletune-local
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job may start again only once its old credential expired (default 120 s); tests
# requeue jobs, so keep it short.
AuthInfo=cred_expire=${SCALETUNE_SLURM_CRED_EXPIRE:-5}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=${SCALETUNE_SLURMCTLD_PORT:-6817}
SlurmdPort=${SCALETUNE_SLURMD_PORT:-6818}
# No cgroups and no systemd here: track processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No slurmdbd: sacct is unavailable; jobs are polled with scontrol, completions logged to a file.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
MpiDefault=pmix
GresTypes=gpu
ReturnToService=2
MinJobAge=600
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=10
NodeName=$node CPUs=$cpus RealMemory=$memory $gres_node State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  printf '%s\n' "$gres_line" > "$dir/gres.conf"
}

stop_daemons() {
  for d in slurmd slurmctld; do
    if [ -s "$dir/$d.pid" ] && kill -0 "$(cat "$dir/$d.pid")" 2>/dev/null; then
      kill "$(cat "$dir/$d.pid")" || true
    fi
  done
  for _ in $(seq 50); do
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break
    sleep 0.1
  done
  pkill -9 -x slurmd 2>/dev/null || true
  pkill -9 -x slurmctld 2>/dev/null || true
}

wait_idle() {
  export SLURM_CONF=$conf
  for _ in $(seq 100); do
    # sinfo blocks for a long time when slurmctld is down: always bound it.
    state=$(timeout 5 sinfo -h -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in
      idle|mixed|allocated) log "node is $state"; return 0 ;;
      drain*|down*)
        timeout 5 scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  log "the node did not become idle; logs: $dir/slurmctld.log $dir/slurmd.log"
  timeout 5 sinfo -R 2>/dev/null || true
  return 1
}

case "${1:-}" in
  start)
    [ "$(id -u)" -eq 0 ] || { log "needs root"; exit 1; }
    install_packages
    start_munge
    stop_daemons
    write_config
    # -c: clean start (forget earlier jobs); slurmd -N: the node name in slurm.conf.
    SLURM_CONF=$conf slurmctld -c -f "$conf"
    SLURM_CONF=$conf slurmd -f "$conf" -N "$(hostname -s)"
    wait_idle
    echo "export SLURM_CONF=$conf"
    ;;
  stop)
    stop_daemons
    ;;
  env)
    echo "export SLURM_CONF=$conf"
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
