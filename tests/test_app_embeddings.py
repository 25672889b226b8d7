"""AppTest of the Embeddings page: every checkpoint in its fused space; the ITC space only for
checkpoints trained with ITC, its numbers beside their references. umap-learn compiles with
numba the first time in a process (~20 s; cached on disk)."""
import math

import pytest

from apptest_support import open_late_cells
from mmaux.analysis import runs
from mmaux.analysis.alignment import silhouette_per_label
from mmaux.checkpoint import read_outputs

pytestmark = pytest.mark.slow


def _open(app_runs, monkeypatch, cells, state):
    return open_late_cells("pages/3_Embeddings.py", app_runs, monkeypatch, cells, state)[0]


def test_fused_space_maps_every_checkpoint_and_compares_them(app_runs, monkeypatch):
    at, chosen = open_late_cells("pages/3_Embeddings.py", app_runs, monkeypatch, [(False, False), (False, True)],
                                 {"_embed_method": "PCA"})
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    numbers = next(df.value for df in at.dataframe if "fused CKA" in df.value.columns)
    assert len(numbers) == 2
    assert numbers["fused CKA"].iloc[0] == "reference"  # the first checkpoint is what the second is compared with
    assert math.isfinite(float(numbers["fused CKA"].iloc[1]))
    assert numbers["mean fused kNN overlap"].iloc[0] == "reference"
    silhouettes = next(df.value for df in at.dataframe if list(df.value.columns) == list(numbers.index))
    expected = silhouette_per_label(read_outputs(chosen[0])[1]["fused"], runs.load_test_table(chosen[0])["label"])
    assert silhouettes.iloc[:, 0].to_dict() == expected.round(3).to_dict()  # a row per label, a column per checkpoint
    assert not any(m.value in ("`None`", "None") for m in at.markdown)  # no stray expression written by the page
    colour = next(s for s in at.sidebar.selectbox if s.label == "Colour by")
    assert "match score" not in colour.options  # a CE checkpoint has no trained score


def test_a_ce_checkpoint_makes_no_aligned_space_claim(app_runs, monkeypatch):
    """CE and CE+ITM (neither trained ITC): no ITC map, no modality gap, no CKA of their
    untrained projections; one line each saying why."""
    at = _open(app_runs, monkeypatch, [(False, False), (False, True)],
               {"_embed_method": "PCA", "_embed_space": "itc"})
    assert not at.exception, at.exception
    assert len(at.info) == 2 and all("not trained with ITC" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not at.dataframe


def test_the_itc_space_of_an_itc_checkpoint_has_references(app_runs, monkeypatch):
    at = _open(app_runs, monkeypatch, [(False, False), (True, False)],
               {"_embed_method": "PCA", "_embed_space": "itc"})
    assert not at.exception, at.exception
    assert len(at.info) == 1 and "not trained with ITC" in at.info[0].value  # the CE one, left out
    references = next(df.value for df in at.dataframe if "number" in df.value.columns).set_index("number")
    assert set(references["checkpoint"]) == {references["checkpoint"].iloc[0]}  # the ITC checkpoint only
    assert references.loc["ITC true vs shuffled AUROC", "chance"] == "0.500"
    assert references.loc["ITC modality gap", "chance"] == "none"  # said, not an empty cell the browser shows as None
    assert math.isfinite(float(references.loc["ITC modality gap", "random projection"]))


def test_embeddings_page_computes_a_umap_on_first_view(app_runs, monkeypatch):
    at = _open(app_runs, monkeypatch, [(False, False)], {"_embed_method": "UMAP", "_embed_posts": 100})
    assert not at.exception, at.exception
    assert any("UMAP of" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 1
