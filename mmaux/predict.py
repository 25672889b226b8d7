"""Predictions for new posts (an uploaded image and a typed text, or a CSV of them) from a
checkpoint. Shared by the `predict` command, probe sets and the dashboard."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from PIL import Image

from mmaux.analysis.spaces import trained_spaces
from mmaux.checkpoint import load_model
from mmaux.data.csvdata import read_table
from mmaux.data.images import ImageLoadError, find_image, load_image
from mmaux.data.normalize import tokenizer_texts
from mmaux.encoders import load_tokenizer
from mmaux.model import ModelOutput, PostBatch

MAX_TEXT_CHARS = 5_000  # longer texts are cut before tokenising (the model reads at most 128 tokens)


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    itm_match: float | None  # P(image and text belong together) from the ITM head; None without one
    itc_cosine: float | None  # cosine of the ITC-projected text and image; None when ITC was not trained

    def to_dict(self) -> dict:
        return {"label": self.label, "probabilities": self.probabilities, "itm_match": self.itm_match,
                "itc_cosine": self.itc_cosine}


class Predictor:
    """A loaded checkpoint with its tokenizer and image transform. Read-only after construction,
    so one instance can serve several dashboard sessions at once."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.model, self.info = load_model(folder)
        # a cosine in projections no ITC loss trained is no match score: not shown
        self.itc_trained = trained_spaces(self.info.model).itc
        cfg = self.model.cfg
        self.tokenizer = load_tokenizer(cfg.vilt_model if cfg.architecture == "vilt" else cfg.text_encoder)
        self.transform = self.model.image_spec.transform()

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.info.label_names

    def batch(self, images: list[Image.Image], texts: list[str]) -> PostBatch:
        """Tokenised texts and transformed images (RGB PIL images from `load_image`)."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        tokens = self.tokenizer(self.model_texts(texts), padding=True, truncation=True,
                                max_length=self.model.cfg.max_text_length, return_tensors="pt")
        return PostBatch(attention_mask=tokens["attention_mask"], input_ids=tokens["input_ids"],
                         pixel_values=self.transform.to_batch(images))

    def model_texts(self, texts: list[str]) -> list[str]:
        """The texts as this checkpoint's tokenizer reads them: cleaned (`clean_text`), and
        normalised as tweets when it was trained so (`normalize_tweets`)."""
        return tokenizer_texts([clean_text(t) for t in texts], self.model.cfg.normalize_tweets)

    def frozen_key(self) -> tuple | None:
        """Identifies the frozen encoder parts: checkpoints with equal keys compute the same
        frozen features for the same posts (every shipped checkpoint shares them)."""
        cfg = self.model.cfg
        if cfg.architecture == "vilt":
            return None
        return (cfg.text_encoder, cfg.normalize_tweets, self.model.backbone.frozen_text_layers, cfg.max_text_length,
                cfg.image_encoder, cfg.vision_tuning, self.model.image_spec)

    @torch.no_grad()
    def encode(self, images: list[Image.Image], texts: list[str]) -> PostBatch:
        """The batch with the frozen parts already run: text states entering the first tuned
        layer and frozen image features replace token ids and pixels."""
        batch = self.batch(images, texts)
        if self.frozen_key() is None:
            return batch
        backbone = self.model.backbone
        if backbone.frozen_text_layers > 0:
            batch.text_states, batch.input_ids = backbone.text_prefix(batch), None
        if self.model.cfg.vision_tuning == "frozen":
            features = backbone.image_features(batch)
            batch.image_tokens, batch.image_pooled, batch.pixel_values = features.tokens, features.pooled, None
        return batch

    @torch.no_grad()
    def forward(self, images: list[Image.Image], texts: list[str]) -> ModelOutput:
        return self.model(self.batch(images, texts))

    @torch.no_grad()
    def predict_encoded(self, batch: PostBatch) -> list[Prediction]:
        out = self.model(batch)
        probs = out.logits.softmax(-1)
        match = out.itm_match
        return [Prediction(label=self.label_names[int(p.argmax())],
                           probabilities={n: float(v) for n, v in zip(self.label_names, p)},
                           itm_match=None if match is None else float(match[i]),
                           itc_cosine=float(out.itc_cosine[i]) if self.itc_trained else None)
                for i, p in enumerate(probs)]

    def predict(self, images: list[Image.Image], texts: list[str]) -> list[Prediction]:
        return self.predict_encoded(self.encode(images, texts))


def predict_many(predictors: list[Predictor], images: list[Image.Image], texts: list[str]) -> list[list[Prediction]]:
    """Every predictor on the same posts; the frozen encoder parts run once per group of
    checkpoints that share them, so eight checkpoints cost little more than one."""
    encoded: dict[tuple, PostBatch] = {}
    results = []
    for predictor in predictors:
        key = predictor.frozen_key()
        if key is None:
            results.append(predictor.predict(images, texts))
            continue
        if key not in encoded:
            encoded[key] = predictor.encode(images, texts)
        results.append(predictor.predict_encoded(encoded[key]))
    return results


def clean_text(text: str) -> str:
    """Drop control characters (they carry no meaning and confuse tokenizers) and cap the length."""
    return "".join(ch if ch.isprintable() or ch in "\n\t " else " " for ch in str(text)[:MAX_TEXT_CHARS])


def predict_table(predictor: Predictor, csv: str | Path, image_template: str, image_root: str | None = None,
                  id_column: str = "tweet_id", text_column: str = "text", batch_size: int = 32) -> pd.DataFrame:
    """Predictions for every row of a CSV of posts (images found as a dataset's are, `find_image`).
    A row whose image cannot be loaded gets its error in the `error` column instead of stopping
    the whole table."""
    table = read_table(csv)
    missing = [c for c in (id_column, text_column) if c not in table.columns]
    if missing:
        raise ValueError(f"{csv}: missing column(s) {missing}; the file has {list(table.columns)}")
    root = Path(image_root) if image_root else Path(csv).parent
    rows = []
    for start in range(0, len(table), batch_size):
        rows += _predict_rows(predictor, table.iloc[start:start + batch_size], root, image_template,
                              id_column, text_column)
    return pd.DataFrame(rows)


def _predict_rows(predictor, chunk, root, template, id_column, text_column) -> list[dict]:
    good, images, rows = [], [], []
    for post_id, text in zip(chunk[id_column], chunk[text_column]):
        row = {"post_id": post_id, "text": text, "error": ""}
        try:
            images.append(load_image(find_image(str(root / template.format(id=post_id)))))
            good.append(row)
        except ImageLoadError as err:
            row["error"] = str(err)
        rows.append(row)
    if good:
        for row, prediction in zip(good, predictor.predict(images, [r["text"] for r in good])):
            row.update(label=prediction.label, itm_match=prediction.itm_match, itc_cosine=prediction.itc_cosine,
                       **{f"p_{k}": v for k, v in prediction.probabilities.items()})
    return rows
