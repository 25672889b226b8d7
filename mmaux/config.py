"""The model's and the losses' configuration: flat dataclasses, every default written once, and
no torch (the dashboard reads configs of checkpoints it never runs).

A checkpoint's `config.json` holds `ModelConfig.to_dict()`; `from_dict` rebuilds it and
validates every value, so a hand-edited or foreign config fails with a message naming the field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from mmaux.encoder_files import BUILTIN_IMAGE, BUILTIN_TEXT

LATE_FUSIONS = ("concat", "attention", "gmu", "aspect")  # their modules: `mmaux.fusion.LATE_FUSIONS`
EARLY_FUSIONS = ("mmbt", "vilt")
ARCHITECTURES = LATE_FUSIONS + EARLY_FUSIONS
ITM_NEGATIVE_MODES = ("random", "hard")
ITM_SCHEDULE_FIELDS = ("itm_warmup_epochs", "itm_ramp_epochs", "itm_ramp_from", "itm_lr_scale")
ALIGNABLE = ("attention", "concat", "mmbt")  # where align_before_fuse is built (see ModelConfig)
TEXT_TUNING = ("full", "frozen", "lora", "adapter")
VISION_TUNING = ("frozen", "full")
ITC_IMAGE_POOLS = ("mean", "attention")


def can_align(architecture: str, text_tuning: str) -> bool:
    """Whether `align_before_fuse` is built for this model (MMBT only over the token adapter)."""
    return architecture in ALIGNABLE and (architecture != "mmbt" or text_tuning == "adapter")


@dataclass(frozen=True)
class LossConfig:
    """The training objective's weights, L = (1 − β_itc − β_itm)·CE + β_itc·ITC + β_itm·ITM over the
    enabled losses (PAPER.md), and ITM's schedule; `mmaux.losses` computes the losses."""

    itc: bool = False  # image-text contrastive loss on the projected embeddings
    itm: bool = False  # image-text matching loss on the fused vector
    beta_itc: float = 0.1  # weight of ITC in the joint loss
    beta_itm: float = 0.1  # weight of ITM in the joint loss
    itm_negatives: str = "random"  # "random" (the paper) or "hard" (by ITC similarity, ALBEF/BLIP)
    itm_reencode: bool = False  # reference parity: re-run both encoders on the swapped pairs
    # ITM's schedule, mmaux's departures from the paper's constant weights (configs without them:
    # the paper's schedule). Only ITM variants use them; `from_aux` leaves them neutral elsewhere.
    itm_warmup_epochs: int = 0  # the first epochs train ITM alone (CE and ITC weight 0), counted in the budget
    itm_ramp_epochs: int = 0  # then β_itm falls linearly, step by step, from itm_ramp_from to beta_itm
    itm_ramp_from: float = 0.8  # β_itm at the start of the ramp (CE gets 1 - β_itc - β_itm(t))
    itm_lr_scale: float = 1.0  # learning rate of the ITM head and the fusion's match layer, × the head lr

    def __post_init__(self):
        if self.itm_negatives not in ITM_NEGATIVE_MODES:
            raise ValueError(f"itm_negatives must be one of {ITM_NEGATIVE_MODES}, got {self.itm_negatives!r}")
        for name in ("beta_itc", "beta_itm"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.ce_weight <= 0:
            raise ValueError(f"beta_itc + beta_itm must stay below 1 (CE weight {self.ce_weight:.3f})")
        for name in ("itm_warmup_epochs", "itm_ramp_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be 0 or a positive integer, got {value!r}")
        if not 0.0 <= self.itm_ramp_from < 1.0 or (
                self.itm and self.itm_ramp_epochs and self.itm_ramp_from + self.beta_itc * self.itc >= 1.0):
            raise ValueError(f"itm_ramp_from must be in [0, 1) and leave CE a positive weight "
                             f"(1 - beta_itc - itm_ramp_from > 0), got {self.itm_ramp_from}")
        if not self.itm_lr_scale > 0:
            raise ValueError(f"itm_lr_scale must be positive, got {self.itm_lr_scale}")

    @property
    def ce_weight(self) -> float:
        """1 - the βs of the enabled auxiliary losses."""
        return 1.0 - self.beta_itc * self.itc - self.beta_itm * self.itm

    @property
    def itm_scheduled(self) -> bool:
        """Whether ITM's weight changes during training (a warm-up or a ramp)."""
        return self.itm and (self.itm_warmup_epochs > 0 or self.itm_ramp_epochs > 0)

    def weights(self, progress: float | None = None) -> tuple[float, float, float]:
        """(CE, ITC, ITM) weights at `progress` epochs into training (0 = the first step; the
        step's fraction of its epoch counts). Without an ITM schedule, or with `progress` None,
        the paper's constant (1 - β_itc - β_itm, β_itc, β_itm) over the enabled losses."""
        itc = self.beta_itc if self.itc else 0.0
        itm = self.beta_itm if self.itm else 0.0
        if progress is None or not self.itm_scheduled:
            return self.ce_weight, itc, itm
        if progress < self.itm_warmup_epochs:
            return 0.0, 0.0, 1.0
        ramp = progress - self.itm_warmup_epochs
        if ramp < self.itm_ramp_epochs:
            itm = self.itm_ramp_from + (self.beta_itm - self.itm_ramp_from) * ramp / self.itm_ramp_epochs
        return 1.0 - itc - itm, itc, itm

    @property
    def variant(self) -> str:
        """Name of the loss variant, as every page, table and file spells it: CE, CE+ITC, CE+ITM or
        CE+ITC+ITM."""
        return "CE" + "+ITC" * self.itc + "+ITM" * self.itm

    @classmethod
    def from_aux(cls, aux: str, **kwargs) -> "LossConfig":
        """Parse the CLI form `none|itc|itm|itc,itm`."""
        names = {a.strip().lower() for a in aux.split(",") if a.strip()} - {"none"}
        unknown = names - {"itc", "itm"}
        if unknown:
            raise ValueError(f"unknown auxiliary loss(es) {sorted(unknown)}; use none, itc, itm or itc,itm")
        if "itm" not in names:  # ITM's schedule stays neutral (recorded as the paper's) without ITM
            kwargs = {k: v for k, v in kwargs.items() if k not in ITM_SCHEDULE_FIELDS}
        return cls(itc="itc" in names, itm="itm" in names, **kwargs)


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
