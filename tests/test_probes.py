"""Probe sets (save, load, names), batch input from CSV + zip, prediction tables, the CLI."""
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmaux import cli, probes
from mmaux.predict import Prediction


class StubPredictor:
    """Predicts 'positive' with p = mean red value / 255; ITM match only when `itm` is set."""

    def __init__(self, itm=True):
        self.itm = itm
        self.calls = 0

    def frozen_key(self):
        return None  # no frozen encoder parts to share: predict_many calls predict directly

    def predict(self, images, texts):
        self.calls += 1
        out = []
        for image, text in zip(images, texts):
            p = float(np.asarray(image)[..., 0].mean() / 255)
            out.append(Prediction("positive" if p >= 0.5 else "negative", {"positive": p, "negative": 1 - p},
                                  0.9 if self.itm else None, float(len(text)) / 100))
        return out


def _probe(name, text, red):
    return probes.Probe(name, text, Image.new("RGB", (8, 8), (red, 0, 0)))


def _png(red) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (red, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("name, expected", [
    ("negation tests", "negation_tests"), ("../../etc/passwd", "etc_passwd"), ("a/b\\c", "a_b_c"),
    (".hidden", "hidden"), ("ok-name_1.v2", "ok-name_1.v2"),
])
def test_sanitise_set_name(name, expected):
    assert probes.sanitise_set_name(name) == expected


@pytest.mark.parametrize("name", ["", "  ", "../..", "///"])
def test_sanitise_refuses_names_with_nothing_left(name):
    with pytest.raises(ValueError, match="probe set name"):
        probes.sanitise_set_name(name)


def test_save_load_round_trip_and_refuse_overwrite(tmp_path):
    saved = [_probe("original", "so happy 🎉", 200), _probe("negate text", "not so happy 🎉", 10)]
    folder = probes.save_probe_set(saved, "my set/1", root=tmp_path)
    assert folder == tmp_path / "my_set_1"
    loaded = probes.load_probe_set(folder)
    assert [(p.name, p.text) for p in loaded] == [("original", "so happy 🎉"), ("negate text", "not so happy 🎉")]
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(saved, loaded))
    assert probes.list_probe_sets(tmp_path) == [folder]
    before = (folder / probes.PROBES_CSV).read_bytes()
    with pytest.raises(FileExistsError, match="exists"):
        probes.save_probe_set([_probe("x", "y", 0)], "my set/1", root=tmp_path)
    assert (folder / probes.PROBES_CSV).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_set_1"]  # no temporary left behind


def test_load_refuses_images_outside_the_set(tmp_path):
    (tmp_path / "evil").mkdir()
    pd.DataFrame([{"name": "a", "text": "t", "image": "../outside.png"}]).to_csv(
        tmp_path / "evil" / probes.PROBES_CSV, index=False)
    with pytest.raises(Exception, match="outside the set's folder"):
        probes.load_probe_set(tmp_path / "evil")


def test_predict_probes_batches_per_checkpoint_and_deltas():
    stubs = {"A": StubPredictor(itm=True), "B": StubPredictor(itm=False)}
    table = probes.predict_probes(stubs, [_probe("original", "abc", 255), _probe("blur image", "abc", 0)])
    assert [s.calls for s in stubs.values()] == [1, 1]
    assert list(table["probe"]) == ["original", "blur image"] * 2
    assert table["itm_match"].isna().tolist() == [False, False, True, True]
    delta = probes.deltas(table)
    assert list(delta["checkpoint"]) == ["A", "B"]
    assert delta["Δ p_positive"].tolist() == [-1.0, -1.0] and delta["flipped"].all()
    assert delta["Δ p(original label)"].tolist() == [-1.0, -1.0]  # both said positive at p = 1


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_read_image_zip_keeps_only_safe_image_members():
    data = _zip({"imgs/a.png": _png(1), "../evil.png": _png(2), "/abs.png": _png(3), "notes.txt": b"hi",
                 "__MACOSX/imgs/._a.png": b"x", "imgs/sub/../b.PNG": _png(4)})
    assert sorted(probes.read_image_zip(data)) == ["imgs/a.png", "imgs/b.PNG"]


def test_read_image_zip_limits():
    data = _zip({f"{i}.png": _png(i) for i in range(3)})
    with pytest.raises(ValueError, match="limit of 2"):
        probes.read_image_zip(data, max_members=2)
    with pytest.raises(ValueError, match="MiB"):
        probes.read_image_zip(data, max_total=10)
    assert probes.read_image_zip(data, max_member=10) == {}
    with pytest.raises(ValueError, match="not a zip"):
        probes.read_image_zip(b"not a zip")


def test_batch_predictions_reports_missing_images_per_row(tmp_path):
    csv = tmp_path / "posts.csv"
    posts = pd.DataFrame({"image": ["imgs/a.png", "b.png", "gone.png"], "text": ["one", "two", "three"]})
    posts.to_csv(csv, index=False)
    images = probes.read_image_zip(_zip({"imgs/a.png": _png(255), "x/b.png": _png(0)}))
    table = probes.batch_predictions({"A": StubPredictor()}, probes.read_csv_upload(csv.read_bytes()), images)
    good = table[table["error"] == ""]
    assert list(good["text"]) == ["one", "two"] and list(good["label"]) == ["positive", "negative"]
    assert list(good["row"]) == [1, 2] and table["row"].tolist() == [1, 2, 3]  # every post keeps its CSV row
    assert table.loc[table["error"] != "", "image"].tolist() == ["gone.png"]
    assert "not in the zip" in table["error"].iloc[-1]


def test_cli_probe_writes_csv_and_refuses_overwrite(tmp_path, monkeypatch, capsys):
    folder = probes.save_probe_set([_probe("original", "hello", 255), _probe("blur image", "hello", 0)], "s",
                                   root=tmp_path)
    stub = StubPredictor()
    stub.info = type("Info", (), {"label": "stub checkpoint"})()
    monkeypatch.setattr(probes, "Predictor", lambda path: stub)
    out = tmp_path / "out.csv"
    args = ["probe", "--set", str(folder), "--checkpoint", "ckpt", "--out", str(out)]
    assert cli.main(args) == 0
    table = pd.read_csv(out)
    assert list(table["probe"]) == ["original", "blur image"] and set(table["checkpoint"]) == {"stub checkpoint"}
    assert cli.main(args) == 2 and "exists" in capsys.readouterr().err
    assert cli.main(["probe", "--set", str(tmp_path / "nope"), "--checkpoint", "ckpt"]) == 2


def test_read_csv_upload_names_the_upload():
    assert probes.read_csv_upload(b"image,text\na.png,hi\n").to_dict("records") == [{"image": "a.png", "text": "hi"}]
    with pytest.raises(probes.DatasetError, match="upload bad.csv"):
        probes.read_csv_upload("é".encode("latin1") + b",x\n", name="bad.csv")


def test_upload_image_accepts_images_and_explains_refusals():
    assert probes.upload_image("cat.PNG", _png(10)).size == (8, 8)
    with pytest.raises(probes.ImageLoadError, match="upload notes.txt: not an image file name"):
        probes.upload_image("notes.txt", _png(10))
    with pytest.raises(probes.ImageLoadError, match="upload fake.png: not an image: the file contains text"):
        probes.upload_image("fake.png", b"hello, I am text")


def test_example_posts_spread_over_evidence():
    table = pd.DataFrame({"post_id": list("abcdef"), "evidence": ["x", "x", "x", "y", "y", "z"]})
    assert list(probes.example_posts(table, 4)["post_id"]) == ["a", "d", "f", "b"]
    assert list(probes.example_posts(table.drop(columns="evidence"), 2)["post_id"]) == ["a", "b"]
