"""`mmaux dashboard`: start the Streamlit dashboard (app.py), the libraries that run models loaded first.

Four of the six pages run a checkpoint's model. The first of them to open in a fresh server
would otherwise pay the import of torch, transformers, the built-in text encoder's model code
and captum: about 5 s of one core here, most of a page's 6 s budget. Importing them in the
background once a page is drawn competes with the next page for the interpreter (the home
page's reload measured 3.8 s instead of 2.9 s), so they load here, before the server answers
(`bench/browser_speed.py` reports that wait as server_start_s). `make run` starts the dashboard
this way; `--no-preload` starts it as `streamlit run app.py` would.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from mmaux.paths import REPO_ROOT, ROOTS_ENV

APP = REPO_ROOT / "app.py"


def preload() -> None:
    """Import what the model pages need: the modules, not any checkpoint's weights."""
    import mmaux.analysis.attributions  # noqa: F401  (captum, the model, its encoders: torch, transformers)
    import mmaux.analysis.matching  # noqa: F401
    import mmaux.analysis.spaces  # noqa: F401
    import mmaux.badges  # noqa: F401
    import mmaux.features  # noqa: F401
    from transformers import AutoConfig
    from transformers.masking_utils import create_bidirectional_mask  # noqa: F401  (torch._dynamo)
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    from mmaux.encoder_files import BUILTIN_TEXT, resolve_text_path

    MODEL_MAPPING[type(AutoConfig.from_pretrained(resolve_text_path(BUILTIN_TEXT), local_files_only=True))]


def streamlit_args(address: str, port: int) -> list[str]:
    """The `streamlit` command line that serves app.py (what `streamlit run` is given)."""
    return ["run", str(APP), "--server.address", address, "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false"]


def add_dashboard_parser(commands):
    p = commands.add_parser("dashboard", help="open the dashboard (Streamlit) on checkpoint roots",
                            description="Serve the dashboard on this machine. The libraries that run models "
                                        "load first (about 6 s on 2 cores), so no page waits for them.")
    p.add_argument("roots", nargs="*", help=f"checkpoint roots (default: {ROOTS_ENV} or the shipped checkpoints)")
    p.add_argument("--address", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this "
                                                          "machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8501, help="the port (default 8501)")
    p.add_argument("--no-preload", action="store_true", help="load torch and transformers when a page first "
                                                             "needs them instead")
    p.set_defaults(func=_run_dashboard)


def _run_dashboard(args) -> int:
    if not APP.is_file():
        raise FileNotFoundError(f"{APP} not found: `mmaux dashboard` serves the app.py of an mmaux checkout "
                                "(installed with `pip install -e .`)")
    missing = [r for r in args.roots if not Path(r).is_dir()]
    if missing:
        raise FileNotFoundError(f"checkpoint root(s) not found: {', '.join(missing)}")
    if args.roots:
        os.environ[ROOTS_ENV] = os.pathsep.join(str(Path(r).resolve()) for r in args.roots)
    if not args.no_preload:
        print("Loading torch, transformers and captum before the server starts…", flush=True)
        preload()
    from streamlit.web import cli as streamlit_cli

    sys.argv = ["streamlit", *streamlit_args(args.address, args.port)]
    return streamlit_cli.main(prog_name="streamlit")
