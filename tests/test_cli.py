"""The command line answers at once and says what it takes: parsing imports no heavy library, every
option has help and shows its default, there is one list of commands, and docs/cli.md is this
parser's own help."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import mmaux
from mmaux.cli import RECIPES, _subcommands, build_parser, main, reference_markdown

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "pandas", "sklearn", "scipy", "PIL", "streamlit")


def test_parsing_every_command_imports_no_heavy_library():
    """In a fresh process: the top-level help, every command's --help and a refused argument
    import none of torch, transformers, pandas, scikit-learn, SciPy, Pillow or Streamlit."""
    code = f"""
import contextlib, io, sys
from mmaux.cli import _subcommands, build_parser, main
names = [name for name, _ in _subcommands(build_parser())]
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    for argv in [["--help"], ["--version"], ["train", "--no-such-option"], ["train", "--arch", "nope"]] + [
            name.split() + ["--help"] for name in names]:
        try:
            main(argv)
        except SystemExit:
            pass
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip().endswith(f" {mmaux.__version__}")


def test_the_commands_are_listed_once_each(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out.split("\ncommands:")[1]
    for name in ("data", "train", "sweep", "reproduce", "evaluate", "predict", "probe", "embed", "effects", "claims",
                 "power", "report", "tag", "import"):
        assert sum(line.startswith(f"    {name} ") or line == f"    {name}" for line in out.splitlines()) == 1, name


def test_every_option_has_help_and_its_default_is_shown():
    parser = build_parser()
    for name, sub in _subcommands(parser):
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"mmaux {name} {action.option_strings or action.dest}: no help"
            shown = (action.default is not None and action.default is not False and action.default != ""
                     and action.default is not argparse.SUPPRESS) or action.dest in RECIPES["cpu"]
            if action.option_strings and shown:
                assert "default" in " ".join(sub._get_formatter()._get_help_string(action).split()), \
                    f"mmaux {name} {action.option_strings}: default not shown"
    train = " ".join(dict(_subcommands(parser))["train"].format_help().split())
    assert "training seed (default: 0)" in train and "(default: attention)" in train
    assert "(default: the recipe's: paper 3, cpu 8)" in train  # --epochs: from RECIPES, not typed twice


def test_a_refused_argument_says_which_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--arch", "nope"])
    assert exit_.value.code == 2
    assert "argument --arch: invalid choice: 'nope'" in capsys.readouterr().err


def test_the_command_reference_in_docs_is_the_parsers_own_help():
    page = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == reference_markdown(), "docs/cli.md is stale: run `python -m mmaux.cli > docs/cli.md`"
    assert "## mmaux import predictions" in page and "## mmaux data validate" in page
