"""A single-node Slurm cluster for the tests: munged, slurmctld and slurmd started on this machine
with a minimal slurm.conf in a temporary folder (localhost ports only), stopped afterwards.
Debian's slurmctld, slurmd, slurm-client and munge packages provide them (`make slurm-deps`);
where they are missing or cannot start (no root, no munge key), the tests that need a cluster
skip and say why."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}",) if os.path.exists(p)), None)


def cannot_start() -> str:
    """Why no cluster can be started here ('' when it can be tried)."""
    missing = [d for d in DAEMONS if not _daemon(d)]
    if missing:
        return f"no {', '.join(missing)} here (Debian packages slurmctld slurmd slurm-client munge: make slurm-deps)"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    if not Path("/etc/munge/munge.key").exists():
        return "no /etc/munge/munge.key"
    return ""


def _our_step_daemons(conf: str) -> list[int]:
    """The slurmstepd processes of this test's cluster (their environment names its slurm.conf):
    never another cluster's, should the tests run on a Slurm node."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if (proc / "comm").read_text().strip() == "slurmstepd" and \
                        f"SLURM_CONF={conf}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
    return found


@contextlib.contextmanager
def single_node_cluster(folder: Path):
    """Yield the environment (SLURM_CONF) of a one-node cluster running in `folder`."""
    host = socket.gethostname()
    for sub in ("state", "spool", "log", "run"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=mmauxtest", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}", "AuthType=auth/munge",
        f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'run' / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'run' / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "ReturnToService=2", "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        f"NodeName={host} CPUs={os.cpu_count()} State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""]))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started_munge = False
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        subprocess.run([_daemon("munged"), "--force"], capture_output=True, check=True)
        started_munge = True
    try:
        subprocess.run([_daemon("slurmctld"), "-f", str(conf)], env=env, capture_output=True, check=True)
        subprocess.run([_daemon("slurmd"), "-f", str(conf)], env=env, capture_output=True, check=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
            if state.returncode == 0 and state.stdout.strip() in ("idle", "mix", "alloc"):
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"the node did not come up: {(folder / 'log' / 'slurmctld.log').read_text()[-2000:]}")
        yield env
    finally:
        deadline = time.time() + 60  # let the jobs' steps end before their daemons do
        while time.time() < deadline and subprocess.run(["squeue", "-h"], env=env, capture_output=True,
                                                         text=True).stdout.strip():
            time.sleep(1)
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True)
        time.sleep(2)
        for pid_file in ("slurmctld.pid", "slurmd.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((folder / "run" / pid_file).read_text()), 9)
        for pid in _our_step_daemons(str(conf)):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        if started_munge:
            subprocess.run(["pkill", "-x", "munged"], capture_output=True)
