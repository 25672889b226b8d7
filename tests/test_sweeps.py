"""Sweeps as jobs (submitit): local processes two at a time, a failed run that leaves nothing
half-written and is the only one run again, the state of every run from the files alone, and the
Slurm submission a cluster user's options make."""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from mmaux import sweeps
from mmaux.cli import main as cli

TINY = ["--task", "sentiment", "--n-train", "24", "--n-val", "12", "--n-test", "12", "--recipe", "cpu",
        "--epochs", "1", "--batch-size", "8"]


def _run(folder: Path) -> sweeps.SweepRun:
    return sweeps.SweepRun("attention", "ce", 0, folder)


@pytest.mark.slow
def test_local_jobs_run_two_at_a_time_a_failure_leaves_nothing_and_only_it_runs_again(private_cache_dir, tmp_path,
                                                                                        capsys):
    out = tmp_path / "runs"
    args = ["sweep", *TINY, "--variants", "ce,itc", "--seeds", "0,1", "--out", str(out), "--executor", "local",
            "--parallel", "2", "--predictions-only"]
    group = out / "synthposts-sentiment" / "attention"
    group.mkdir(parents=True)
    (group / "itc-seed1").write_text("a file where the run's folder must go")  # makes exactly that run fail
    assert cli(args) == 1
    out_text = capsys.readouterr().out
    assert out_text.count("done: attention/") == 3 and "FAILED: attention/itc-seed1" in out_text
    assert "1 of 4 runs failed" in out_text and "the same command again runs them, and only them" in out_text
    assert not list(group.glob("*.partial-*")) and not list(group.glob("*.job"))  # nothing half-written or stale
    assert (group / "itc-seed1.failed").read_text().startswith(("NotADirectoryError", "FileExistsError", "OSError"))
    logs = list((out / ".sweep-logs").glob("*_log.err"))
    assert len(logs) == 4  # one log per job, in the logs folder

    assert cli([*args, "--status"]) == 1
    status = capsys.readouterr().out
    assert status.startswith("failed: attention/itc-seed1\n")
    assert status.strip().endswith("3 done, 0 running, 1 failed, 0 to do (of 4 runs)")

    (group / "itc-seed1").unlink()
    done = {p.parent.name: p.stat().st_mtime_ns for p in group.glob("*-seed*/config.json")}
    assert sorted(done) == ["ce-seed0", "ce-seed1", "itc-seed0"]
    assert cli(args) == 0
    again = capsys.readouterr().out
    assert "sweep: 4 runs: 3 done, 1 to run" in again and again.count("done: attention/") == 1
    assert {name: (group / name / "config.json").stat().st_mtime_ns for name in done} == done  # left alone
    assert not (group / "itc-seed1.failed").exists()
    assert json.loads((group / "itc-seed1" / "config.json").read_text())["weights"] is False
    assert cli([*args, "--status"]) == 0
    assert capsys.readouterr().out.strip() == "4 done, 0 running, 0 failed, 0 to do (of 4 runs)"


def test_status_reads_the_files_beside_each_run(tmp_path):
    run = _run(tmp_path / "ce-seed0")
    assert sweeps.status(run) == ("to do", "")
    run.marker.write_text(json.dumps({"job": "7_3", "host": "node12", "pid": 1, "started": 1000.0,
                                      "deadline": 1000.0 + 3600}))
    state, detail = sweeps.status(run, now=2000.0)
    assert state == "running" and detail.startswith("job 7_3 on node12 since")
    assert sweeps.status(run, now=5000.0) == ("failed", "job 7_3 ran past its time limit")
    run.marker.write_text(json.dumps({"job": "local-1", "host": socket.gethostname(), "pid": 2 ** 22 + 12345,
                                      "started": time.time(), "deadline": None}))
    assert sweeps.status(run) == ("failed", "job local-1 ended without finishing (killed?)")
    run.marker.write_text(json.dumps({"job": "local-2", "host": socket.gethostname(), "pid": os.getpid(),
                                      "started": time.time(), "deadline": None}))
    assert sweeps.status(run)[0] == "running"
    run.failure.write_text("ValueError: out of memory\n")
    assert sweeps.status(run) == ("failed", "ValueError: out of memory")
    run.folder.mkdir()
    (run.folder / "config.json").write_text("{}")
    assert sweeps.status(run) == ("done", "")


def test_a_cluster_users_options_become_one_slurm_array(tmp_path, monkeypatch):
    """The sbatch script submitit writes for `--slurm-partition gpu --gpus-per-job 1 --time-limit 90
    --mem-gb 32 --parallel 8 --slurm account=nlp` over 80 runs (read through submitit's own
    interface; an `srun` that does nothing stands in for the cluster: nothing is submitted)."""
    from submitit.slurm.slurm import _make_sbatch_string

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    options = sweeps.JobOptions(executor="slurm", parallel=8, threads=4, time_limit_min=90, partition="gpu",
                                gpus_per_job=1, mem_gb=32, slurm=(("account", "nlp"),))
    executor = options.executor_for(tmp_path / "logs")
    assert executor.cluster == "slurm"
    script = _make_sbatch_string(command="python -m submitit.core._submit x", folder=str(tmp_path / "logs"),
                                 map_count=80, **executor._executor.parameters)
    for line in ("#SBATCH --array=0-79%8", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --time=90", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=32GB", "#SBATCH --account=nlp"):
        assert line in script, line


def test_slurm_without_a_cluster_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun here
    with pytest.raises(ValueError, match="--executor slurm: no `srun` on this machine"):
        sweeps.JobOptions(executor="slurm").executor_for(tmp_path / "logs")


def test_bad_job_options_are_refused_in_one_line(tmp_path, capsys):
    assert cli(["sweep", *TINY, "--out", str(tmp_path), "--slurm", "account"]) == 2
    assert "--slurm 'account': give KEY=VALUE" in capsys.readouterr().err
    assert cli(["sweep", *TINY, "--out", str(tmp_path), "--parallel", "0"]) == 2
    assert "--parallel and --threads must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sweep_on_a_single_node_slurm_cluster(private_cache_dir, tmp_path, monkeypatch, capsys):
    """The same command on a real (one-node) Slurm: one job array, the runs' state while in flight
    and at the end, from the files alone."""
    import slurm_support

    why = slurm_support.cannot_start()
    if why:
        pytest.skip(f"no single-node Slurm here: {why}")
    with slurm_support.single_node_cluster(tmp_path / "slurm") as env:
        monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])
        out = tmp_path / "runs"
        args = ["sweep", *TINY, "--variants", "ce,itc", "--seeds", "0", "--out", str(out), "--parallel", "2",
                "--time-limit", "20", "--predictions-only"]
        assert cli(args) == 0  # --executor auto: the controller answers, so Slurm
        assert "submitted 2 jobs to Slurm as array" in capsys.readouterr().out
        deadline = time.time() + 600
        while time.time() < deadline:
            cli([*args, "--status"])
            last = capsys.readouterr().out.strip().splitlines()[-1]
            if last.startswith("2 done"):
                break
            time.sleep(3)
        assert last == "2 done, 0 running, 0 failed, 0 to do (of 2 runs)"
        group = out / "synthposts-sentiment" / "attention"
        assert sorted(p.name for p in group.iterdir()) == ["ce-seed0", "itc-seed0"]
        assert len(list((out / ".sweep-logs").glob("*_log.out"))) == 2
