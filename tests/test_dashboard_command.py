"""`mmaux dashboard` (what `make run` starts): the model libraries load before the server, the
roots given become the dashboard's, and a missing root is refused before anything starts."""
import os
import subprocess
import sys

from mmaux import cli, dashboard
from mmaux.paths import REPO_ROOT, ROOTS_ENV


def test_preload_imports_what_the_model_pages_run():
    code = ("import sys; from mmaux.dashboard import preload; preload(); "
            "print(' '.join(m for m in ('torch', 'captum.attr', 'transformers.masking_utils', "
            "'transformers.models.bert.modeling_bert', 'mmaux.predict') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True,
                         env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert out.stdout.split() == ["torch", "captum.attr", "transformers.masking_utils",
                                  "transformers.models.bert.modeling_bert", "mmaux.predict"]


def test_dashboard_serves_app_py_on_the_roots_given(tmp_path, monkeypatch):
    from streamlit.web import cli as streamlit_cli

    started = {}
    monkeypatch.setattr(dashboard, "preload", lambda: started.setdefault("preloaded", True))
    monkeypatch.setattr(streamlit_cli, "main", lambda prog_name: started.update(argv=list(sys.argv)) or 0)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert cli.main(["dashboard", str(tmp_path / "a"), str(tmp_path / "b"), "--port", "8600"]) == 0
    assert started["preloaded"]
    assert started["argv"] == ["streamlit", "run", str(REPO_ROOT / "app.py"), "--server.address", "127.0.0.1",
                               "--server.port", "8600", "--server.headless", "true",
                               "--browser.gatherUsageStats", "false"]
    assert os.environ[ROOTS_ENV] == os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])


def test_dashboard_refuses_a_missing_root_before_starting(tmp_path, monkeypatch, capsys):
    from streamlit.web import cli as streamlit_cli

    monkeypatch.setattr(dashboard, "preload", lambda: (_ for _ in ()).throw(AssertionError("preloaded")))
    monkeypatch.setattr(streamlit_cli, "main", lambda prog_name: (_ for _ in ()).throw(AssertionError("started")))
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    assert cli.main(["dashboard", str(tmp_path / "nowhere")]) == 2
    assert f"checkpoint root(s) not found: {tmp_path / 'nowhere'}" in capsys.readouterr().err
    assert ROOTS_ENV not in os.environ
