"""Does SynthPosts need both modalities? Linear probes on frozen encoder features.

For each task, fits logistic regressions on the training split with text-only features (MiniLM,
mean-pooled), image-only features (EfficientNet-Lite0, pooled) and both concatenated, and prints
test accuracy per `evidence` slice. Expected shape: text-only near chance where the evidence is in
the image only, image-only near chance where it is in the text only, multimodal best on
conflicting evidence.

    python bench/synth_baselines.py [--seed 7]
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmaux.config import ModelConfig
from mmaux.data.datasets import DatasetSpec, load_dataset
from mmaux.data.synthposts import TASKS, SynthSpec
from mmaux.encoders import masked_mean
from mmaux.features import PostInputs
from mmaux.model import MultimodalClassifier

MAX_TEXT_LENGTH = 40  # as the cpu recipe: the feature cache is shared with training


def split_features(model, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    inputs = PostInputs(model, frame, progress=True)
    text = masked_mean(inputs.text_states.float(), inputs.attention_mask).numpy()
    image = inputs.image_pooled.float().numpy()
    return {"text": text, "image": image, "both": np.hstack([text, image])}


def slice_accuracy(model_name, y_true, y_pred, evidence) -> dict:
    row = {"features": model_name, "all": float(np.mean(y_true == y_pred))}
    for value in sorted(set(evidence)):
        rows = evidence == value
        row[value] = float(np.mean(y_true[rows] == y_pred[rows]))
    return row


def run_task(model, task: str, seed: int) -> pd.DataFrame:
    posts = load_dataset(DatasetSpec(synth=SynthSpec(task=task, seed=seed)), progress=True)
    train, test = posts.split("train"), posts.split("test")
    x_train, x_test = split_features(model, train), split_features(model, test)
    rows = []
    for name in ("text", "image", "both"):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5))
        probe.fit(x_train[name], train["label_index"])
        rows.append(slice_accuracy(name, test["label_index"].to_numpy(), probe.predict(x_test[name]),
                                   test["evidence"].to_numpy()))
    majority = test["label_index"].value_counts(normalize=True).iloc[0]
    rows.append({"features": "majority class", "all": majority})
    table = pd.DataFrame(rows)
    table.insert(0, "task", task)
    return table


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table (for the README), numbers with 3 decimals, blanks for missing cells."""
    cell = lambda v: "" if isinstance(v, float) and np.isnan(v) else f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7, help="SynthPosts generation seed")
    args = parser.parse_args()
    cfg = ModelConfig(num_labels=2, architecture="concat", text_tuning="frozen", max_text_length=MAX_TEXT_LENGTH)
    model = MultimodalClassifier(cfg).eval()
    table = pd.concat([run_task(model, task, args.seed) for task in TASKS], ignore_index=True)
    columns = ["task", "features", "all", "text_only", "image_only", "both_agree", "both_conflict"]
    print("\nTest accuracy of linear probes on frozen features, per evidence slice")
    print(markdown(table[columns]))


if __name__ == "__main__":
    main()
