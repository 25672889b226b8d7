"""The model's configuration: one flat dataclass, every default written once.

A checkpoint's `config.json` holds `ModelConfig.to_dict()`; `from_dict` rebuilds it and
validates every value, so a hand-edited or foreign config fails with a message naming the field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from mmaux.encoders import BUILTIN_IMAGE, BUILTIN_TEXT
from mmaux.fusion import LATE_FUSIONS
from mmaux.losses import LossConfig

EARLY_FUSIONS = ("mmbt", "vilt")
ARCHITECTURES = tuple(LATE_FUSIONS) + EARLY_FUSIONS
ALIGNABLE = ("attention", "concat", "mmbt")  # where align_before_fuse is built (see ModelConfig)
TEXT_TUNING = ("full", "frozen", "lora", "adapter")
VISION_TUNING = ("frozen", "full")
ITC_IMAGE_POOLS = ("mean", "attention")


def can_align(architecture: str, text_tuning: str) -> bool:
    """Whether `align_before_fuse` is built for this model (MMBT only over the token adapter)."""
    return architecture in ALIGNABLE and (architecture != "mmbt" or text_tuning == "adapter")


@dataclass(frozen=True)
class ModelConfig:
    num_labels: int  # classes of the task
    architecture: str = "attention"  # concat | attention | gmu | aspect (late) | mmbt | vilt (early)
    text_encoder: str = BUILTIN_TEXT  # "minilm", a Hugging Face hub id or a local folder
    image_encoder: str = BUILTIN_IMAGE  # "efficientnet-lite0", a hub id or a local folder
    vilt_model: str = ""  # hub id or folder of a ViltModel; only for architecture "vilt"
    text_tuning: str = "full"  # full fine-tuning (the paper) | frozen | lora (peft) | adapter (see below)
    text_trainable_layers: int = 0  # 0: all layers; k: only the top k are tuned (or get LoRA)
    lora_rank: int = 8  # r for text_tuning "lora" (LoRA on query and value)
    adapter_dim: int = 128  # bottleneck of the token adapter over the frozen text stack ("adapter")
    vision_tuning: str = "frozen"  # the paper freezes the vision encoder
    max_text_length: int = 128  # tokens (the paper: 128, 40 for ViLT)
    normalize_tweets: bool = False  # texts normalised as BERTweet's normalizeTweet before tokenising, as the
    #                                 authors' datasets do (mmaux.data.normalize); configs without it: off
    hidden_dim: int = 256  # width of the fused vector (late fusion)
    proj_dim: int = 256  # width of the shared ITC space
    dropout: float = 0.05  # the paper's dropout
    mmbt_image_tokens: int = 4  # image tokens MMBT inserts into the text sequence
    itc_image_pool: str = "mean"  # the image vector ITC projects (fusion reads the encoder's own): the
    #                               encoder's mean-pooled vector (the paper) or "attention": a learned pooling of its tokens
    align_before_fuse: bool = False  # ITC on the unimodal sides, and fusion reads the ITC space
    #                                  (ALBEF): see AttentionFusion, ConcatFusion, MMBTBackbone
    loss: LossConfig = field(default_factory=LossConfig)  # CE + enabled auxiliary losses

    def __post_init__(self):
        self._check_choice("architecture", ARCHITECTURES)
        self._check_choice("text_tuning", TEXT_TUNING)
        self._check_choice("vision_tuning", VISION_TUNING)
        self._check_choice("itc_image_pool", ITC_IMAGE_POOLS)
        for name in ("num_labels", "lora_rank", "adapter_dim", "max_text_length", "hidden_dim", "proj_dim", "mmbt_image_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.normalize_tweets, bool):
            raise ValueError(f"normalize_tweets must be true or false, got {self.normalize_tweets!r}")
        if not isinstance(self.text_trainable_layers, int) or self.text_trainable_layers < 0:
            raise ValueError(f"text_trainable_layers must be 0 (all) or a positive integer, "
                             f"got {self.text_trainable_layers!r}")
        if self.num_labels < 2:
            raise ValueError(f"num_labels must be at least 2, got {self.num_labels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.architecture == "vilt" and not self.vilt_model:
            raise ValueError("architecture 'vilt' needs vilt_model (a ViltModel hub id or folder)")
        if self.align_before_fuse and not can_align(self.architecture, self.text_tuning):
            raise ValueError(f"align_before_fuse is built for {', '.join(ALIGNABLE)} (mmbt with text_tuning "
                             f"'adapter': ITC reads the adapted text tokens before the joint layer); "
                             f"got {self.architecture!r} with text_tuning {self.text_tuning!r}")
        if self.loss.itm_negatives == "hard" and not self.loss.itc:
            raise ValueError("itm_negatives 'hard' samples by the ITC similarity: enable ITC too "
                             "(an untrained ITC space would make them random)")
        if self.architecture == "vilt" and (self.text_tuning != "full" or self.vision_tuning != "frozen"):
            raise ValueError("architecture 'vilt' is one joint transformer, fine-tuned whole: "
                             "leave text_tuning='full' and vision_tuning='frozen' (its default)")

    def _check_choice(self, name: str, choices: tuple[str, ...]):
        if getattr(self, name) not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")

    @property
    def is_late_fusion(self) -> bool:
        return self.architecture in LATE_FUSIONS

    @property
    def itc_after_fusion(self) -> bool:
        """ITC reads the joint layers' states (early fusion without align_before_fuse): each text
        state has already seen its own image, so a recall@k over them is not retrieval."""
        return self.architecture in EARLY_FUSIONS and not self.align_before_fuse

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """Rebuild from `to_dict()` output; unknown or missing fields raise ValueError."""
        if not isinstance(values, dict):
            raise ValueError(f"model config must be a JSON object, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s) {unknown}; known: {sorted(known)}")
        values = dict(values)
        loss = values.pop("loss", {})
        try:
            return cls(loss=LossConfig(**loss), **values)
        except TypeError as err:
            raise ValueError(f"invalid model config: {err}") from None
