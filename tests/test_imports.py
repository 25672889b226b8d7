"""What the dashboard's pages import: the home page reads configs, outputs and stored results
and never runs a model, so its modules must not pull in torch or transformers (their import was
most of a cold home page's wait in the browser)."""
import subprocess
import sys

from mmaux import config, fusion

HOME_MODULES = ("mmaux.ui", "mmaux.report", "mmaux.figures", "mmaux.views", "mmaux.selection", "mmaux.checkpoint",
                "mmaux.analysis.custom_slices", "mmaux.analysis.group_results", "mmaux.tagging")


def test_the_home_pages_modules_import_no_torch():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in HOME_MODULES)
            + "print(sorted(m for m in ('torch', 'transformers', 'mmaux.model', 'mmaux.predict') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_model_page_still_gets_its_models_from_ui():
    from mmaux import ui
    from mmaux.ui import models

    assert ui.predictor is models.predictor and ui.show_badges is models.show_badges


def test_the_configs_fusion_names_are_the_fusion_modules():
    assert set(config.LATE_FUSIONS) == set(fusion.LATE_FUSIONS)
