"""The multimodal classifier with its ITC and ITM heads.

One model class serves training, analysis and the dashboard. A backbone (late fusion, MMBT or
ViLT) turns a batch of posts into pooled text and image vectors and a fused vector; the heads
sit on top:

    classifier  fused -> task logits                  (CE)
    text_proj   pooled text -> shared space           (ITC; with align_before_fuse the fusion's query)
    image_proj  pooled image -> shared space          (ITC; with align_before_fuse the fusion's key)
    logit_scale learned log temperature               (ITC)
    itm_head    fused -> match / mismatch              (ITM, only when ITM is enabled)
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from mmaux.config import ModelConfig
from mmaux.encoders import (
    ImageFeatures,
    ImageInputSpec,
    TextFeatures,
    image_input_spec,
    load_image_encoder,
    load_text_encoder,
    masked_mean,
)
from mmaux.fusion import LATE_FUSIONS
from mmaux.losses import LOGIT_SCALE_INIT, itc_logits, itc_loss, itm_loss, joint_loss, sample_itm_pairs

TEXT_FIELDS = ("input_ids", "attention_mask", "text_states")
IMAGE_FIELDS = ("pixel_values", "image_tokens", "image_pooled")


@dataclass
class PostBatch:
    """Model inputs for B posts. Text comes as token ids or as cached frozen-prefix states,
    images as pixels or as cached frozen-encoder features (see mmaux.features)."""

    attention_mask: torch.Tensor  # (B, T)
    input_ids: torch.Tensor | None = None  # (B, T)
    text_states: torch.Tensor | None = None  # (B, T, D) output of the frozen text layers
    pixel_values: torch.Tensor | None = None  # (B, 3, H, W)
    image_tokens: torch.Tensor | None = None  # (B, N, Dv) frozen image encoder tokens
    image_pooled: torch.Tensor | None = None  # (B, Dv)

    def __len__(self) -> int:
        return self.attention_mask.shape[0]

    def to(self, device) -> "PostBatch":
        return PostBatch(**{f.name: _move(getattr(self, f.name), device) for f in fields(self)})

    def pair(self, image_index: torch.Tensor, text_index: torch.Tensor) -> "PostBatch":
        """Posts made of image `image_index[k]` and text `text_index[k]`."""
        picked = {name: _take(getattr(self, name), text_index) for name in TEXT_FIELDS}
        picked |= {name: _take(getattr(self, name), image_index) for name in IMAGE_FIELDS}
        return PostBatch(**picked)


def _move(value, device):
    return value.to(device) if value is not None else None


def _take(value, index):
    return value[index] if value is not None else None


@dataclass
class BackboneOutput:
    text_pooled: torch.Tensor  # (B, Dt) input of the ITC text projection
    image_pooled: torch.Tensor  # (B, Di) input of the ITC image projection
    fused: torch.Tensor  # (B, H) input of the classifier and the ITM head
    state: object  # what `fuse_pairs` needs to fuse other image-text pairs
    itc_emb: tuple[torch.Tensor, torch.Tensor] | None = None  # ITC text and image embeddings, when
    #                                                           fusion already projected them


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, C) task logits
    text_emb: torch.Tensor  # (B, P) ITC-projected text, not normalised
    image_emb: torch.Tensor  # (B, P) ITC-projected image, not normalised
    fused: torch.Tensor  # (B, H) fused representation
    itm_logits: torch.Tensor | None = None  # (B, 2) ITM head on each post's own pair; None without ITM
    loss: torch.Tensor | None = None  # joint loss, when labels were given
    losses: dict[str, torch.Tensor] | None = None  # its parts: ce, itc, itm

    @property
    def itm_match(self) -> torch.Tensor | None:
        """P(match) of each post with its own text (B,), or None without an ITM head."""
        return None if self.itm_logits is None else self.itm_logits.softmax(-1)[:, 1]

    @property
    def itc_cosine(self) -> torch.Tensor:
        """Cosine of each post's projected text and image (B,)."""
        return F.cosine_similarity(self.text_emb, self.image_emb, dim=-1)


class TokenAdapter(nn.Module):
    """A bottleneck adapter (Houlsby et al. 2019) on every text token:

        x + W_up GELU(W_down LN(x)),   W_up initialised to 0 (the adapter starts as identity).

    With `text_tuning="adapter"` the pretrained text stack stays frozen (its output is cached)
    and this is the part of the text encoder that trains, so ITC and ITM shape the very text
    tokens that fusion reads: the auxiliary losses reach the classifier, as in the paper where
    the text encoder is fine-tuned, at a fraction of a transformer layer's cost.
    """

    def __init__(self, width: int, bottleneck: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.down = nn.Linear(width, bottleneck)
        self.up = nn.Linear(bottleneck, width)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        return tokens + self.up(self.dropout(F.gelu(self.down(self.norm(tokens)))))


class AttentionPool(nn.Module):
    """softmax over tokens of a learned score, then the weighted mean: (B, N, D) -> (B, D).

    What ITC projects of the image with `itc_image_pool="attention"`: the frozen encoder's mean
    over its 7 × 7 cells mixes the subject with background and the other glyphs; a learned
    pooling lets ITC look at the cells that its texts talk about."""

    def __init__(self, width: int):
        super().__init__()
        self.score = nn.Linear(width, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(self.score(tokens), dim=1) * tokens).sum(1)


def itc_image_pool(cfg: ModelConfig, width: int) -> AttentionPool | None:
    """The learned pooling of `cfg.itc_image_pool="attention"`, or None for the encoder's own."""
    return AttentionPool(width) if cfg.itc_image_pool == "attention" else None


def pooled_image(image: ImageFeatures, pool: AttentionPool | None) -> torch.Tensor:
    """The image vector ITC projects: the encoder's pooled vector, or `pool` over its tokens."""
    return image.pooled if pool is None else pool(image.tokens)


class DualEncoderBackbone(nn.Module):
    """Shared by late fusion and MMBT: a text encoder whose bottom `frozen_text_layers` are
    frozen (their output may come cached in `batch.text_states`) and an image encoder."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.text = load_text_encoder(cfg.text_encoder)
        self.image = load_image_encoder(cfg.image_encoder)
        n_layers, k = self.text.num_layers, cfg.text_trainable_layers
        # the first layer that training changes: none when frozen or adapted, the top k, or all
        frozen_stack = cfg.text_tuning in ("frozen", "adapter")
        self.tuned_from = n_layers if frozen_stack else max(n_layers - k, 0) if k else 0
        # layers run before the live part (their output is cacheable); MMBT runs at least its
        # top layer live, jointly over text and image tokens (with an adapter: a new joint layer)
        joint_top = cfg.architecture == "mmbt" and cfg.text_tuning != "adapter"
        self.frozen_text_layers = min(self.tuned_from, n_layers - 1) if joint_top else self.tuned_from
        # the trained part of the text encoder with text_tuning "adapter", right after the cache
        self.text_adapter = (TokenAdapter(self.text.hidden_size, cfg.adapter_dim, cfg.dropout)
                             if cfg.text_tuning == "adapter" else None)

    def text_prefix(self, batch: PostBatch) -> torch.Tensor:
        """States (B, T, D) entering the first live text layer (through the adapter, if any)."""
        if batch.text_states is not None:
            states = batch.text_states
        else:
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.frozen_text_layers == 0):
                states = self.text.run_layers(self.text.embed(batch.input_ids), batch.attention_mask,
                                              0, self.frozen_text_layers)
        return states if self.text_adapter is None else self.text_adapter(states)

    def image_features(self, batch: PostBatch) -> ImageFeatures:
        if batch.image_tokens is not None:
            return ImageFeatures(batch.image_tokens, batch.image_pooled)
        trainable = any(p.requires_grad for p in self.image.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            return self.image(batch.pixel_values)


class LateFusionBackbone(DualEncoderBackbone):
    """Text and image encoded apart, then one of the LATE_FUSIONS."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        aligned = dict(attention_dim=cfg.proj_dim, aligned=True) if cfg.align_before_fuse else {}  # attention, concat
        self.fusion = LATE_FUSIONS[cfg.architecture](
            self.text.hidden_size, self.image.hidden_size, cfg.hidden_dim, cfg.dropout, **aligned)
        self.text_dim, self.image_dim, self.fused_dim = self.text.hidden_size, self.image.hidden_size, cfg.hidden_dim
        self.itc_image_pool = itc_image_pool(cfg, self.image.hidden_size)

    @property
    def itc_projections(self) -> tuple[nn.Linear, nn.Linear]:
        """With align_before_fuse, the ITC text and image projections are the fusion's own."""
        return self.fusion.query, self.fusion.key

    def forward(self, batch: PostBatch) -> BackboneOutput:
        tokens = self.text.run_layers(self.text_prefix(batch), batch.attention_mask, self.frozen_text_layers)
        text = TextFeatures(tokens, batch.attention_mask, masked_mean(tokens, batch.attention_mask))
        image = self.image_features(batch)  # what the fusion reads
        itc_image = pooled_image(image, self.itc_image_pool)  # what ITC projects
        sides = (self.fusion.encode_text(text), self.fusion.encode_image(image, itc_image))
        return BackboneOutput(text.pooled, itc_image, self.fusion.pair(*sides), sides,
                              self.fusion.itc_embeddings(*sides))

    def fuse_pairs(self, state, image_index: torch.Tensor, text_index: torch.Tensor) -> torch.Tensor:
        """Fuse other pairs from each modality's side already encoded: neither the encoders nor the
        fusion's per-modality projections run again, only the pairing."""
        text_side, image_side = state
        return self.fusion.pair(tuple(t[text_index] for t in text_side), tuple(v[image_index] for v in image_side))


class MMBTBackbone(DualEncoderBackbone):
    """Early fusion (Kiela et al. 2019): image tokens projected into the text transformer's
    token space and run jointly with the text. They join the sequence where the tuned text
    layers begin (layer 0 with full or LoRA tuning, i.e. the original MMBT; the top layer when
    the text encoder is frozen), so the frozen text layers below stay text-only and cacheable.

    With `text_tuning="adapter"` (the CPU recipe) the whole pretrained stack is cached and the
    joint pass is one new, narrow transformer layer (width `hidden_dim`) over the adapted text
    tokens and the image tokens: running MiniLM's own top layer live measured 0.74 s a step at
    batch 64 on one core (1.5 s with ITM), about ten times a late-fusion step.

    `align_before_fuse` (ALBEF, Li et al. 2021), only over the adapter: ITC reads the two sides
    *before* the joint layer (the adapted text tokens' mean, the image through `itc_image_pool`),
    so it is retrieval between independent texts and images rather than between joint states
    in which each text has already seen its own image; and the fused vector gains W_m (q ⊙ k),
    the agreement of the ITC embeddings, as in ConcatFusion. Without it the joint
    layer's ITM head stayed at chance (own vs shuffled AUROC 0.50 in every shipped MMBT run).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        narrow = cfg.text_tuning == "adapter"
        width = cfg.hidden_dim if narrow else self.text.hidden_size
        self.n_image_tokens = cfg.mmbt_image_tokens
        # the joint layer of the CPU recipe, and the text tokens' way into its width
        self.text_to_joint = nn.Linear(self.text.hidden_size, width) if narrow else None
        self.joint_layer = nn.TransformerEncoderLayer(
            width, nhead=max(1, width // 32), dim_feedforward=4 * width, dropout=cfg.dropout,
            batch_first=True, norm_first=True) if narrow else None
        self.image_to_text = nn.Linear(self.image.hidden_size, width)  # image tokens into text space
        self.image_position = nn.Parameter(torch.zeros(cfg.mmbt_image_tokens, width))
        self.image_norm = nn.LayerNorm(width)
        self.pooler = nn.Sequential(nn.Linear(width, cfg.hidden_dim), nn.Tanh())  # joint state -> fused
        self.text_dim, self.image_dim, self.fused_dim = width, width, cfg.hidden_dim
        self.aligned = cfg.align_before_fuse
        if self.aligned:  # ITC on the unimodal sides (ALBEF), and their agreement into the fused vector
            self.text_dim, self.image_dim = self.text.hidden_size, self.image.hidden_size
            self.query = nn.Linear(self.text_dim, cfg.proj_dim, bias=False)  # ITC's text_proj
            self.key = nn.Linear(self.image_dim, cfg.proj_dim, bias=False)  # ITC's image_proj
            self.itc_image_pool = itc_image_pool(cfg, self.image_dim)
            self.match = nn.Linear(cfg.proj_dim, cfg.hidden_dim, bias=False)  # q ⊙ k -> fused

    @property
    def itc_projections(self) -> tuple[nn.Linear, nn.Linear]:
        return self.query, self.key

    def forward(self, batch: PostBatch) -> BackboneOutput:
        adapted = self.text_prefix(batch)
        prefix = adapted if self.text_to_joint is None else self.text_to_joint(adapted)
        features = self.image_features(batch)
        grid = features.tokens  # (B, N, Dv)
        pooled = F.adaptive_avg_pool1d(grid.transpose(1, 2), self.n_image_tokens).transpose(1, 2)
        image = self.image_norm(self.image_to_text(pooled) + self.image_position)  # (B, n, D)
        if not self.aligned:
            state = (prefix, batch.attention_mask, image)
            text_pooled, image_pooled, fused = self._joint(*state)
            return BackboneOutput(text_pooled, image_pooled, fused, state)
        text_pooled = masked_mean(adapted, batch.attention_mask)
        image_pooled = pooled_image(features, self.itc_image_pool)
        itc = (self.query(text_pooled), self.key(image_pooled))
        state = (prefix, batch.attention_mask, image, *itc)
        return BackboneOutput(text_pooled, image_pooled, self._fuse(*state), state, itc)

    def _fuse(self, prefix, mask, image, text_itc, image_itc):
        """The joint layer's fused vector plus the ITC agreement (align_before_fuse)."""
        return self._joint(prefix, mask, image)[2] + self.match(text_itc * image_itc)

    def _joint(self, prefix, mask, image):
        """One pass of the remaining text layers over [text tokens ; image tokens]."""
        n_text = prefix.shape[1]
        joint_mask = torch.cat([mask, mask.new_ones(mask.shape[0], image.shape[1])], dim=1)
        tokens = torch.cat([prefix, image], dim=1)
        if self.joint_layer is None:
            states = self.text.run_layers(tokens, joint_mask, self.frozen_text_layers)
        else:
            states = self.joint_layer(tokens, src_key_padding_mask=joint_mask == 0)
        return (masked_mean(states[:, :n_text], mask), states[:, n_text:].mean(1),
                self.pooler(masked_mean(states, joint_mask)))

    def fuse_pairs(self, state, image_index, text_index):
        prefix, mask, image, *itc = state
        if not self.aligned:
            return self._joint(prefix[text_index], mask[text_index], image[image_index])[2]
        return self._fuse(prefix[text_index], mask[text_index], image[image_index],
                          itc[0][text_index], itc[1][image_index])


class ViltBackbone(nn.Module):
    """ViLT (Kim et al. 2021): text tokens and image patches in one transformer. ITC uses the
    text CLS state and the first image token, as the reference does."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from transformers import ViltModel

        from mmaux.encoders import _offline

        self.vilt = ViltModel.from_pretrained(cfg.vilt_model, local_files_only=_offline())
        self.text_dim = self.image_dim = self.fused_dim = self.vilt.config.hidden_size

    def forward(self, batch: PostBatch) -> BackboneOutput:
        out = self.vilt(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                        pixel_values=batch.pixel_values)
        n_text = batch.input_ids.shape[1]
        states = out.last_hidden_state
        return BackboneOutput(states[:, 0], states[:, n_text], out.pooler_output, batch)

    def fuse_pairs(self, state: PostBatch, image_index, text_index):
        """Early fusion has no unimodal outputs to reuse: the pair is run through ViLT again."""
        return self.forward(state.pair(image_index, text_index)).fused


BACKBONES = {"mmbt": MMBTBackbone, "vilt": ViltBackbone} | {name: LateFusionBackbone for name in LATE_FUSIONS}


class MultimodalClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = BACKBONES[cfg.architecture](cfg)
        b = self.backbone
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(b.fused_dim, cfg.num_labels))  # CE
        # ITC projections; with align_before_fuse they are the attention fusion's query and key
        self.text_proj = None if cfg.align_before_fuse else nn.Linear(b.text_dim, cfg.proj_dim, bias=False)
        self.image_proj = None if cfg.align_before_fuse else nn.Linear(b.image_dim, cfg.proj_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))  # ITC
        self.itm_head = nn.Linear(b.fused_dim, 2) if cfg.loss.itm else None  # ITM
        self.register_buffer("class_weights", torch.ones(cfg.num_labels))  # CE, set from train split
        self._apply_tuning()
        self.train()  # frozen modules in eval mode from the start: features computed now are final

    # --- freezing -------------------------------------------------------------------------
    def _apply_tuning(self):
        """Freeze what the config says is frozen; LoRA adapters go on the tuned text layers."""
        if self.cfg.architecture == "vilt":
            return
        b = self.backbone
        if self.cfg.vision_tuning == "frozen":
            b.image.requires_grad_(False)
        text, n_frozen = b.text, b.tuned_from
        if self.cfg.text_tuning in ("frozen", "adapter"):
            text.requires_grad_(False)
        elif self.cfg.text_tuning == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            text.requires_grad_(False)
            lora = LoraConfig(r=self.cfg.lora_rank, lora_alpha=2 * self.cfg.lora_rank, lora_dropout=self.cfg.dropout,
                              target_modules=["query", "value"],
                              layers_to_transform=list(range(n_frozen, text.num_layers)), layers_pattern="layer")
            inject_adapter_in_model(lora, text.model)
        elif n_frozen > 0:
            text.model.embeddings.requires_grad_(False)
            text.layers[:n_frozen].requires_grad_(False)

    def frozen_modules(self) -> list[nn.Module]:
        """Modules whose weights never change: they always run in eval mode (no dropout, fixed
        batch-norm statistics), so their cached outputs equal what training would compute."""
        if self.cfg.architecture == "vilt":
            return []
        b = self.backbone
        frozen = [b.image] if self.cfg.vision_tuning == "frozen" else []
        if b.tuned_from == b.text.num_layers:
            frozen.append(b.text)
        elif b.tuned_from > 0:
            frozen += [b.text.model.embeddings, *b.text.layers[: b.tuned_from]]
        return frozen

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    @property
    def image_spec(self) -> ImageInputSpec:
        if self.cfg.architecture == "vilt":
            return image_input_spec(self.cfg.vilt_model)
        return self.backbone.image.input_spec

    # --- forward --------------------------------------------------------------------------
    def forward(self, batch: PostBatch, labels: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> ModelOutput:
        """Logits, ITC embeddings, fused vector and own-pair ITM logits; with `labels`, also
        the joint loss (ITM then samples mismatched pairs with `generator`)."""
        enc = self.backbone(batch)
        text_emb, image_emb = enc.itc_emb or (self.project_text(enc.text_pooled), self.project_image(enc.image_pooled))
        out = ModelOutput(
            logits=self.classifier(enc.fused),
            text_emb=text_emb,
            image_emb=image_emb,
            fused=enc.fused,
            itm_logits=self.itm_head(enc.fused) if self.itm_head is not None else None,
        )
        if labels is not None:
            self._add_losses(out, batch, enc, labels, generator)
        return out

    def project_text(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled text (B, Dt) -> the ITC space (B, P)."""
        return (self.backbone.itc_projections[0] if self.text_proj is None else self.text_proj)(pooled)

    def project_image(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled image (B, Di) -> the ITC space (B, P)."""
        return (self.backbone.itc_projections[1] if self.image_proj is None else self.image_proj)(pooled)

    def _add_losses(self, out: ModelOutput, batch, enc: BackboneOutput, labels, generator):
        loss_cfg = self.cfg.loss
        losses = {"ce": F.cross_entropy(out.logits, labels, weight=self.class_weights)}
        if loss_cfg.itc:
            losses["itc"] = itc_loss(out.text_emb, out.image_emb, self.logit_scale)
        if loss_cfg.itm:
            losses["itm"] = itm_loss(*self._itm_pairs(batch, enc, out, generator))
        out.losses = losses
        out.loss = joint_loss(loss_cfg, losses["ce"], losses.get("itc"), losses.get("itm"))

    def _itm_pairs(self, batch: PostBatch, enc: BackboneOutput, out: ModelOutput, generator):
        """ITM logits and labels for a batch where about half the images get another post's text.

        Matched rows reuse the fused vector already computed; mismatched rows are fused again
        from the unimodal outputs (late fusion) or the joint layers (early fusion). With
        `itm_reencode` the whole backbone runs again on the swapped batch, as the reference does.
        """
        n = len(batch)
        similarity = None
        if self.cfg.loss.itm_negatives == "hard":  # ITC logits: cosine over the learned temperature
            similarity = itc_logits(out.image_emb, out.text_emb, self.logit_scale)
        text_index, labels = sample_itm_pairs(n, 0.5, similarity, generator)
        text_index, labels = text_index.to(enc.fused.device), labels.to(enc.fused.device)
        own = torch.arange(n, device=enc.fused.device)
        if self.cfg.loss.itm_reencode:
            fused = self.backbone(batch.pair(own, text_index)).fused
        else:
            rows = (labels == 0).nonzero().squeeze(1)
            fused = enc.fused.index_copy(0, rows, self.backbone.fuse_pairs(enc.state, rows, text_index[rows]))
        return self.itm_head(fused), labels

    def auxiliary_reach(self, batch: PostBatch, labels: torch.Tensor, generator=None) -> dict[str, bool]:
        """For each enabled auxiliary loss: does its gradient reach a trained parameter that also
        changes the task logits? If not, the loss cannot change what the classifier does (e.g.
        ITC on frozen text and image encoders in late fusion: the projections feed nothing else),
        and "with vs without" it compares a model with itself."""
        params = [p for p in self.parameters() if p.requires_grad]
        was_training = self.training
        self.eval()  # no dropout: the answer does not depend on a random mask
        try:
            out = self(batch, labels=labels, generator=generator)
            to_logits = torch.autograd.grad(out.logits.sum(), params, allow_unused=True, retain_graph=True)
            reach = {}
            for name in ("itc", "itm"):
                if name in out.losses:
                    grads = torch.autograd.grad(out.losses[name], params, allow_unused=True, retain_graph=True)
                    reach[name] = any(g is not None and t is not None and bool(g.any()) and bool(t.any())
                                      for g, t in zip(grads, to_logits))
            return reach
        finally:
            self.train(was_training)

    def itm_parameter_names(self) -> list[str]:
        """The ITM head and the fusion's match layer (W_m of align before fuse: q ⊙ a, or q ⊙ k,
        into the fused vector): the parameters `LossConfig.itm_lr_scale` speeds up."""
        if self.itm_head is None:
            return []
        return [name for name, _ in self.named_parameters()
                if name.startswith("itm_head.") or name in ("backbone.fusion.match.weight", "backbone.match.weight")]

    def param_groups(self, encoder_lr: float, head_lr: float, weight_decay: float) -> list[dict]:
        """AdamW groups: pretrained encoder weights at `encoder_lr`, new layers at `head_lr`
        (the ITM head and match layer at `head_lr` × `itm_lr_scale`); no weight decay on biases,
        norms and the temperature (1-d and scalar parameters)."""
        groups: dict[tuple[float, float], list] = {}
        itm_names, itm_lr = set(self.itm_parameter_names()), head_lr * self.cfg.loss.itm_lr_scale
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            lr = encoder_lr if name.startswith(("backbone.text.", "backbone.image.", "backbone.vilt.")) else head_lr
            if name in itm_names and self.cfg.loss.itm_lr_scale != 1.0:
                lr = itm_lr
            decay = weight_decay if param.ndim >= 2 else 0.0
            groups.setdefault((lr, decay), []).append(param)
        return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]

    # --- checkpoint support ---------------------------------------------------------------
    def untouched_keys(self) -> set[str]:
        """State-dict keys that training never changes: frozen pretrained parameters and the
        buffers of always-frozen modules. A checkpoint leaves them out; loading takes them from
        the encoders' own files."""
        keys = {name for name, p in self.named_parameters() if not p.requires_grad}
        frozen = {id(m) for m in self.frozen_modules()}
        for prefix, module in self.named_modules():
            if id(module) in frozen:
                keys |= {f"{prefix}.{key}" for key in module.state_dict()}
        return keys

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but `untouched_keys`: heads, fusion, trained encoder layers, adapters."""
        untouched = self.untouched_keys()
        return {name: t.detach().contiguous() for name, t in self.state_dict().items() if name not in untouched}
