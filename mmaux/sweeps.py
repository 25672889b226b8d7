"""A sweep's runs as jobs: on Slurm (where `srun` exists) or as local processes, through submitit.

One run is one job. Whatever runs it, a run's folder appears whole or not at all: the job trains
into `<folder>.partial-<job>` and renames it into place once every file is written, so a job that
fails, times out or is pre-empted leaves no half-written checkpoint for a later sweep to skip.
What a run's state is comes from files beside its folder, so `mmaux sweep --status` answers while
jobs are in flight, on any machine that sees the folders:

    done      <folder>/config.json exists (written last)
    running   <folder>.job exists: job id, host, process, start and time limit
    failed    <folder>.failed exists: the exception and the end of the job's log; or a .job
              whose process is gone (same host) or whose time limit has passed
    to do     none of these

A sweep started again with the same arguments skips the done runs and runs the failed and to-do
ones (and a running one only after it has ended). The caches the runs share (SynthPosts data,
frozen-encoder features) are filled by the submitting process before any job starts
(`sweep --prepare-only`), so no two jobs compute the same cache. (Nothing here imports torch or
pandas at load time: the command line reads `EXECUTORS` while parsing.)
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

STATES = ("done", "running", "failed", "to do")
LOG_TAIL = 12  # lines of a failed job's log shown
EXECUTORS = ("auto", "local", "slurm", "debug")  # auto: Slurm where its controller answers, else local


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: where its checkpoint goes, and the files that say its state."""

    arch: str
    variant: str
    seed: int
    folder: Path

    @property
    def marker(self) -> Path:
        return marker_file(self.folder)

    @property
    def failure(self) -> Path:
        return failure_file(self.folder)

    @property
    def name(self) -> str:
        return f"{self.folder.parent.name}/{self.folder.name}"


def marker_file(folder: Path) -> Path:
    """Beside a run's folder while its job runs: job id, host, process, start, deadline."""
    return folder.with_name(folder.name + ".job")


def failure_file(folder: Path) -> Path:
    """Beside a run's folder when its job failed: the exception and the end of its traceback."""
    return folder.with_name(folder.name + ".failed")


def _job_id() -> str:
    """This job's id: Slurm's (array_task) or the local process's."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID") or f"local-{os.getpid()}"


def status(run: SweepRun, now: float | None = None) -> tuple[str, str]:
    """(state, detail) of a run, from its files alone (`STATES`)."""
    from mmaux.checkpoint import CONFIG

    if (run.folder / CONFIG).exists():
        return "done", ""
    if run.failure.exists():
        return "failed", run.failure.read_text(encoding="utf-8", errors="replace").strip()
    if run.marker.exists():
        try:
            job = json.loads(run.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "running", "(its job file is being written)"
        now = time.time() if now is None else now
        if job.get("host") == socket.gethostname() and not _alive(int(job.get("pid", 0))):
            return "failed", f"job {job.get('job')} ended without finishing (killed?)"
        if job.get("deadline") and now > job["deadline"]:
            return "failed", f"job {job.get('job')} ran past its time limit"
        return "running", f"job {job.get('job')} on {job.get('host')} since {time.ctime(job.get('started', 0))}"
    return "to do", ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def train_job(cfg, layouts: bool = False, threads: int = 1, time_limit_min: float | None = None) -> str:
    """What one job runs: `train(cfg)` into a partial folder beside `cfg.out_dir`, its UMAP maps
    when asked (runs with weights only), then the folder renamed into place. `threads` torch
    threads (results depend on it; it is recorded in metrics.json). On any failure the run's
    .failed file gets the exception and the partial folder goes."""
    import torch

    from mmaux.checkpoint import read_info
    from mmaux.train import train

    folder, job, started = Path(cfg.out_dir), _job_id(), time.time()
    folder.parent.mkdir(parents=True, exist_ok=True)
    failure_file(folder).unlink(missing_ok=True)
    marker_file(folder).write_text(json.dumps({
        "job": job, "host": socket.gethostname(), "pid": os.getpid(), "started": started,
        "deadline": started + 60 * time_limit_min if time_limit_min else None}), encoding="utf-8")
    partial = folder.with_name(f"{folder.name}.partial-{job}")
    shutil.rmtree(partial, ignore_errors=True)
    torch.set_num_threads(threads)
    try:
        train(replace(cfg, out_dir=str(partial)), progress=False)
        if layouts and read_info(partial).has_model:
            from mmaux.analysis.embeddings import store_layouts

            store_layouts(partial)
        _clear_interrupted(folder)
        os.rename(partial, folder)  # fails when something else is in the way: nothing is overwritten
        return str(folder)
    except BaseException as err:
        lines = traceback.format_exc().strip().splitlines()
        failure_file(folder).write_text(f"{type(err).__name__}: {err}\n" + "\n".join(lines[-LOG_TAIL:]) + "\n",
                                        encoding="utf-8")
        raise
    finally:
        marker_file(folder).unlink(missing_ok=True)
        shutil.rmtree(partial, ignore_errors=True)


def _clear_interrupted(folder: Path) -> None:
    """Remove a run folder that an interrupted older sweep left without its config.json (written
    last, so the run is incomplete) when it holds nothing but a checkpoint's own files; anything
    else in it is the user's and stays (the rename then fails and says so)."""
    from mmaux.analysis.layout_params import SHIPPED_LAYOUTS
    from mmaux.checkpoint import CONFIG, METRICS, OUTPUTS, VAL_OUTPUTS, WEIGHTS

    if folder.is_dir() and not (folder / CONFIG).exists():
        if {p.name for p in folder.iterdir()} <= {WEIGHTS, METRICS, OUTPUTS, VAL_OUTPUTS, SHIPPED_LAYOUTS}:
            shutil.rmtree(folder)


@dataclass(frozen=True)
class JobOptions:
    """Where and how the jobs run (submitit's parameters, by their meaning here)."""

    executor: str = "auto"  # one of EXECUTORS (`chosen_executor`)
    parallel: int = 1  # jobs at once (Slurm: the array's %N; local: processes at once)
    threads: int = 1  # torch threads per job
    time_limit_min: int = 240
    partition: str = ""
    gpus_per_job: int = 0
    mem_gb: float = 0.0
    slurm: tuple[tuple[str, str], ...] = ()  # any other sbatch option, KEY=VALUE

    def executor_for(self, logs: Path):
        """A submitit AutoExecutor with these parameters."""
        import submitit

        try:
            executor = submitit.AutoExecutor(folder=str(logs), cluster=chosen_executor(self.executor))
        except RuntimeError as err:  # submitit's "Could not detect srun"
            raise ValueError(f"--executor {self.executor}: no `srun` on this machine ({err}); submit from the "
                             "cluster's login node, or use --executor local") from None
        params = {"timeout_min": self.time_limit_min, "cpus_per_task": self.threads, "name": "mmaux-sweep"}
        if self.gpus_per_job:
            params["gpus_per_node"] = self.gpus_per_job
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        if executor.cluster == "slurm":
            params["slurm_array_parallelism"] = self.parallel
            if self.partition:
                params["slurm_partition"] = self.partition
            if self.slurm:
                params["slurm_additional_parameters"] = dict(self.slurm)
        executor.update_parameters(**params)
        return executor


def chosen_executor(name: str) -> str:
    """The executor `name` stands for: "auto" is Slurm where a controller answers (`sinfo`), else
    local processes (submitit's own choice is Slurm wherever `srun` is installed, answering or not)."""
    if name != "auto":
        return name
    return "slurm" if shutil.which("srun") and _slurm_answers() else "local"


def _slurm_answers() -> bool:
    """Whether a Slurm controller answers here, not just whether its commands are installed."""
    import subprocess

    try:
        return subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_jobs(configs: Sequence, runs: Sequence[SweepRun], options: JobOptions, layouts: bool,
             logs: Path, say=print) -> list[SweepRun]:
    """Submit one job per run; on Slurm as one array (at most `parallel` at once) and return at
    once, elsewhere keep `parallel` jobs going until all have ended. Returns the runs that failed
    (locally; on Slurm, `status` tells later)."""
    executor = options.executor_for(logs)
    args = [(cfg, layouts, options.threads, options.time_limit_min) for cfg in configs]
    if executor.cluster == "slurm":
        with executor.batch():
            jobs = [executor.submit(train_job, *a) for a in args]
        say(f"submitted {len(jobs)} jobs to Slurm as array {jobs[0].job_id.split('_')[0]} (at most "
            f"{options.parallel} at once); logs in {logs}")
        return []
    pending, active, failed = list(zip(args, runs)), [], []
    in_process = executor.cluster == "debug"  # submitit's debug jobs run when their result is asked for
    while pending or active:
        while pending and len(active) < max(options.parallel, 1):
            a, run = pending.pop(0)
            job = executor.submit(train_job, *a)
            if in_process:
                _wait(job)
            active.append((job, run))
        ended = [(job, run) for job, run in active if in_process or job.done()]
        if not ended:
            time.sleep(1.0)
        for job, run in ended:
            active.remove((job, run))
            state, detail = status(run)
            if state == "done":
                say(f"done: {run.name} (job {job.job_id})")
            else:
                failed.append(run)
                say(f"FAILED: {run.name} (job {job.job_id}; log {job.paths.stderr})\n"
                    + _indent(detail or _tail(job.paths.stderr)))
    return failed


def _wait(job) -> None:
    """Let a job finish; its failure is recorded beside its folder (`train_job`), not raised here."""
    try:
        job.result()
    except Exception:  # noqa: BLE001 - any failure of the run: status() reads it from the files
        pass


def _tail(path: Path) -> str:
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-LOG_TAIL:])
    except OSError:
        return "(no log)"


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def report_status(runs: Sequence[SweepRun], say=print) -> dict[str, int]:
    """One line per run that is not done, then the counts per state."""
    counts = dict.fromkeys(STATES, 0)
    for run in runs:
        state, detail = status(run)
        counts[state] += 1
        if state != "done":
            say(f"{state}: {run.name}" + (f"\n{_indent(detail)}" if detail else ""))
    say(", ".join(f"{n} {state}" for state, n in counts.items()) + f" (of {len(runs)} runs)")
    return counts
