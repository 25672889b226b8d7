"""The exported report (`mmaux report`, the home page's downloads): every effect, the claims, the
checkpoints' identities and the link, as the home page computes them; nothing overwritten."""
import pandas as pd
import pytest

from mmaux import report
from mmaux.analysis import effects, group_results
from mmaux.analysis import runs as runs_lib
from mmaux.data.datasets import file_sha256


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))


def test_report_command_writes_every_effect_claim_and_checkpoint(app_runs, tmp_path, capsys):
    from mmaux.cli import main

    root, runs = app_runs
    out, csv = tmp_path / "report.md", tmp_path / "effects.csv"
    assert main(["report", str(root), "--out", str(out), "--csv", str(csv), "--url", "http://host:9/"]) == 0
    frame, contrasts = report.results(runs)
    text = out.read_text(encoding="utf-8")
    assert "Reopen this view: <http://host:9/>" in text
    assert text.count("\n| SynthPosts · ") == len(frame) + len(contrasts) + len(runs)  # one row each
    for row in frame[frame["verdict"] == effects.SUPPORTED].itertuples():
        assert effects.finding(row) in text
    folder = runs["folder"].iloc[0]
    assert file_sha256(f"{folder}/config.json")[:16] in text
    table = pd.read_csv(csv)
    assert list(table.columns) == effects.COLUMNS and len(table) == len(frame)
    assert table["delta"].round(6).tolist() == frame["delta"].round(6).tolist()
    assert capsys.readouterr().out.startswith(f"wrote {out} and {csv}: {len(frame)} effects")


def test_report_never_overwrites_a_file(app_runs, tmp_path, capsys):
    from mmaux.cli import main

    root, _ = app_runs
    out = tmp_path / "report.md"
    out.write_text("my notes")
    assert main(["report", str(root), "--out", str(out)]) == 2
    assert out.read_text() == "my notes"
    assert "exists; choose another" in capsys.readouterr().err


def test_results_are_the_home_pages(app_runs):
    _, runs = app_runs
    frame, contrasts = report.results(runs)
    groups = runs_lib.groups(runs)
    pd.testing.assert_frame_equal(frame, pd.concat([group_results.group_effects(g) for _, g in groups],
                                                   ignore_index=True))
    assert len(contrasts) == sum(len(group_results.group_claims(g)) for _, g in groups)
