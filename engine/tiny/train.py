"""Train the tiny default model on this CPU, from a seed: ``python -m vacelive.engine.tiny.train``.

Four phases, every step count fixed so the run is reproducible (see :class:`TrainSettings`):

1. **Autoencoder**: the tiny TAEW config, started as a blocky colour-true autoencoder
   (:func:`colour_path_init`), learns to reconstruct random 48x48 crops of synthetic clips and
   of their control frames (12 frames, 4 per latent), with a loss weighted towards edges (so the
   control's thin lines are encoded, not lost), a term on the change from frame to frame (so the
   4 frames of a latent frame move instead of decoding alike), a penalty that keeps each latent
   channel near zero mean and unit spread (the DiT's noise scale) and noise added to the latents
   before decoding (so slightly wrong latents still decode to clean pictures).
2. **Pool**: synthetic 24-frame clips at the engine's size (320x192) go through the engine's own
   path: an annotator (edge, scribble, flow, or the depth-like map), an inpainting box on some,
   :func:`~engine.vace.context.compose_frames` and the streamed
   :class:`~engine.vace.context.VaceContextEncoder`, exactly as a live chunk would; the clip's
   latents, its vace_context, its reference still's latent, where its shapes are (per latent
   cell) and its prompt are kept (float16).
3. **DiT + VACE**: the tiny DiT and its one-block VACE branch learn flow matching the way the
   generator runs: one chunk of 3 latent frames at a time, either a stream's first chunk or the
   second one attending (through the KV ring) to the first written at t=0, that first chunk being
   the clean latents or, half the time, the model's own estimate of them; timesteps are mostly the
   four warped sampling steps; VACE is dropped on 20 % of the steps (so the model draws without
   control and ``context_scale`` scales a learned effect), references are given on 60 %, and
   prompts lose their colour word on some samples (always when a reference is given, so the
   reference alone carries the colour). The loss counts the latent cells in and along the
   shapes more than the background (``shape_weight``): that is where the control, the prompt
   and the reference have something to tell. The weights kept are an exponential moving
   average.
4. **The sampler's chain**: the live sampler takes four big steps (t = 1000, 937.5, 833, 625),
   where a flow-matching model gives blurry averages. Starting from phase 3's weights, each step
   runs the sampler from noise for k steps without gradients (on 30 % of the steps as a second
   chunk, after the first was sampled and written to the ring from its own estimate) and trains
   step k to give the clip's clean latents from that input (as Self-Forcing trains on the
   generator's own outputs), with the same weights on the shapes.

The result is a weights folder (``vacelive-weights.toml``, ``dit``/``vace``/``tae``/``t5``
safetensors) that the engine loads strictly, like any other.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn
from vacelive.annotators import make_annotator
from vacelive.engine.model import CONFIGS, WanModel
from vacelive.engine.model.loading import save_weights
from vacelive.engine.sampler import add_noise, timesteps_for, x0_from_flow
from vacelive.engine.text import make_text_encoder
from vacelive.engine.vace import VaceBranch, attach_vace, default_vace_layers
from vacelive.engine.vace.context import (
    VaceContextEncoder,
    compose_frames,
    reference_context,
    to_unit,
    to_video_tensor,
)
from vacelive.engine.vace.inject import EXTRAS_KEY, VaceConditioning
from vacelive.engine.vae.taew import TAEW, TAEW_CONFIGS, MemBlock, TGrow, TPool, _apply
from vacelive.engine.weights.manifest import WeightsManifest

from .shapes import NO_COLOUR_PROMPT, ClipSpec, box_mask

log = logging.getLogger(__name__)

CONTROLS = {"edge": 0.5, "scribble": 0.15, "depth": 0.2, "flow": 0.15}
"""Control kinds of the pool's clips and their shares."""
ANNOTATOR_SETTINGS = {"canny_low": 100, "canny_high": 200, "scribble_width": 4, "flow_method": "dis"}
"""The registry's defaults for the annotators the pool uses."""
WEIGHT_FILES = {"dit": "dit.safetensors", "vace": "vace.safetensors", "tae": "tae.safetensors",
                "t5": "t5.safetensors"}


@dataclass(frozen=True)
class TrainSettings:
    """Everything the result depends on; the defaults are the bundled model's."""

    seed: int = 0
    width: int = 320
    height: int = 192
    ae_steps: int = 1000
    ae_batch: int = 8
    ae_crop: int = 48
    ae_frames: int = 12
    ae_lr: float = 1e-3
    ae_chroma_weight: float = 4.0
    ae_edge_weight: float = 10.0
    ae_motion_weight: float = 50.0
    pool_clips: int = 1000
    mask_share: float = 0.2
    dit_steps: int = 2000
    dit_batch: int = 8
    dit_lr: float = 7e-4
    chain_steps: int = 2200
    chain_lr: float = 2e-4
    chain_second_chunk_share: float = 0.3
    shape_weight: float = 4.0
    ema: float = 0.998
    vace_dropout: float = 0.2
    reference_share: float = 0.6
    reference_colourless: float = 1.0  # of the samples given a reference, the share without a colour word
    prompt_dropout: float = 0.1
    first_chunk_share: float = 0.3
    own_context_share: float = 0.5
    threads: int = 2
    checkpoint_every: int = 1000


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    """Linear warm-up, then cosine decay to a tenth of ``peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def control_frames(kind: str, spec: ClipSpec, frames: np.ndarray) -> np.ndarray:
    """The control of ``frames`` (T, H, W, 3) uint8 by ``kind``, made by the engine's annotators
    (the depth-like map is drawn from the spec: the depth annotator needs a model file)."""
    if kind == "depth":
        return spec.depth(0, len(frames))
    annotator = make_annotator(kind)
    return annotator(frames, ANNOTATOR_SETTINGS)


# --- phase 1: the autoencoder ---------------------------------------------------------------

def ae_batch(rng: np.random.Generator, settings: TrainSettings) -> Tensor:
    """Random crops [B, frames, 3, crop, crop] in [0, 1] of clips (three in four) and their controls."""
    crops = []
    c = settings.ae_crop
    for _ in range(settings.ae_batch):
        spec = ClipSpec.draw(rng, settings.width, settings.height)
        frames = spec.frames(int(rng.integers(0, 100)), settings.ae_frames)
        if rng.random() < 0.25:
            frames = control_frames(str(rng.choice(["edge", "scribble", "depth"])), spec, frames)
        y, x = int(rng.integers(0, settings.height - c + 1)), int(rng.integers(0, settings.width - c + 1))
        crops.append(frames[:, y:y + c, x:x + c])
    return torch.from_numpy(np.stack(crops)).permute(0, 1, 4, 2, 3).float() / 255.0


def chroma(x: Tensor) -> Tensor:
    """Each pixel's colour without its brightness: RGB minus their mean (channels on dim 2)."""
    return x - x.mean(2, keepdim=True)


def edge_weights(x: Tensor, weight: float) -> Tensor:
    """Per-pixel loss weights of frames x [B, T, 3, H, W]: 1 plus ``weight`` times the pixel's
    largest colour step to its right and lower neighbours. Control frames are thin lines on
    black, a small share of a plain MSE: unweighted, the autoencoder learns them faint and
    blurred and the DiT gets little of the control."""
    across = F.pad((x[..., :, 1:] - x[..., :, :-1]).abs(), (0, 1))
    down = F.pad((x[..., 1:, :] - x[..., :-1, :]).abs(), (0, 0, 0, 1))
    return 1 + weight * (across + down).amax(2, keepdim=True)


def reconstruction_loss(y: Tensor, x: Tensor, chroma_weight: float, edge_weight: float) -> Tensor:
    """MSE weighted towards edges (:func:`edge_weights`), plus a little L1, plus extra weight on
    colour (which a small autoencoder otherwise drops first: the muted backgrounds make it a
    small part of the error)."""
    return ((edge_weights(x, edge_weight) * (y - x).square()).mean() + 0.1 * F.l1_loss(y, x)
            + chroma_weight * F.mse_loss(chroma(y), chroma(x)))


def motion_loss(y: Tensor, x: Tensor) -> Tensor:
    """How far the change between neighbouring frames of y [B, T, 3, H, W] is from x's. A
    latent frame holds 4 frames; without this term the tiny autoencoder decodes them almost
    alike and the picture jumps every 4th frame."""
    return F.mse_loss(y[:, 1:] - y[:, :-1], x[:, 1:] - x[:, :-1])


def latent_penalty(z: Tensor) -> Tensor:
    """How far each latent channel of z [B, t, 16, h, w] is from zero mean and unit spread."""
    per_channel = z.transpose(0, 2).flatten(1)  # [16, ...]
    return per_channel.mean(1).square().mean() + (per_channel.std(1) - 1).square().mean()


RGB_SCALE = 4.0
"""Latent channels 0-2 start as (average RGB - 0.5) * RGB_SCALE (about unit spread)."""


@torch.no_grad()
def colour_path_init(model: TAEW) -> None:
    """Start the autoencoder as a blocky but colour-true one: channels 0-2 of every layer carry
    the average RGB of their pixels (convs as identity or 2x2 average, TPool as the mean of the
    frames it merges, TGrow as copies, every MemBlock's last conv zero so the block passes its
    input through), the other channels random. A tiny TAEW trained from a random start learns
    brightness first and colour only much later; from here it only has to learn detail."""

    def identity_rows(conv: nn.Conv2d, weight: Tensor) -> None:  # out channels 0-2 <- in 0-2
        conv.weight[:3] = 0
        for i in range(3):
            conv.weight[i, i] = weight
        if conv.bias is not None:
            conv.bias[:3] = 0

    centre = torch.zeros(3, 3)
    centre[1, 1] = 1
    average = torch.zeros(3, 3)
    average[1:, 1:] = 0.25  # stride 2, padding 1: the 2x2 block of the output pixel
    for seq in (model.encoder, model.decoder):
        for block in seq:
            if isinstance(block, nn.Conv2d):
                identity_rows(block, average if block.stride == (2, 2) else centre)
            elif isinstance(block, MemBlock):
                block.conv[-1].weight.zero_()
                block.conv[-1].bias.zero_()
            elif isinstance(block, TPool):  # out channel i = mean over the merged frames of their channel i
                c = block.conv.weight.shape[0]
                block.conv.weight[:3] = 0
                for k, i in itertools.product(range(block.stride), range(3)):
                    block.conv.weight[i, k * c + i] = 1 / block.stride
            elif isinstance(block, TGrow):  # every new frame's channel i = the frame's channel i
                c = block.conv.weight.shape[1]
                for k, i in itertools.product(range(block.stride), range(3)):
                    block.conv.weight[k * c + i] = 0
                    block.conv.weight[k * c + i, i] = 1
    last_encoder, first_decoder = model.encoder[-1], model.decoder[1]
    last_encoder.weight[:3] *= RGB_SCALE
    last_encoder.bias[:3] = -0.5 * RGB_SCALE
    first_decoder.weight[:3] /= RGB_SCALE
    first_decoder.bias[:3] = 0.5


def train_autoencoder(settings: TrainSettings, rng: np.random.Generator) -> tuple[TAEW, dict]:
    """Phase 1; returns the trained TAEW (eval mode) and its figures (PSNR on fresh 96x96 crops of
    12 frames)."""
    model = TAEW(TAEW_CONFIGS["tiny"])
    colour_path_init(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.ae_lr, weight_decay=0.0)
    started = time.perf_counter()
    for step in range(settings.ae_steps):
        set_lr(optimizer, lr_at(step, settings.ae_steps, settings.ae_lr))
        x = ae_batch(rng, settings)
        z = _apply(model.encoder, x, {})  # [B, 3, 16, h, w]
        y = _apply(model.decoder, z + 0.1 * torch.randn_like(z), {})  # [B, 12, 3, H, W]
        loss = (reconstruction_loss(y, x, settings.ae_chroma_weight, settings.ae_edge_weight)
                + settings.ae_motion_weight * motion_loss(y, x) + 0.01 * latent_penalty(z))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0 or step == settings.ae_steps - 1:
            psnr = -10 * math.log10(F.mse_loss(y.clamp(0, 1), x).item())
            log.info("autoencoder step %d/%d: loss %.4f, PSNR %.1f dB, %.0f s", step, settings.ae_steps,
                     loss.item(), psnr, time.perf_counter() - started)
    model.eval().requires_grad_(False)
    with torch.no_grad():
        x = ae_batch(np.random.default_rng(settings.seed + 7), replace(settings, ae_crop=96, ae_frames=12))
        z = _apply(model.encoder, x, {})
        y = _apply(model.decoder, z, {}).clamp(0, 1)
        figures = {"ae_psnr_db": round(-10 * math.log10(F.mse_loss(y, x).item()), 2),
                   "latent_std": round(z.std().item(), 3), "ae_seconds": round(time.perf_counter() - started)}
    return model, figures


# --- phase 2: the pool of encoded clips -----------------------------------------------------

@dataclass
class Pool:
    """The encoded training clips (float16): latents [N, 16, 6, h, w], vace_context
    [N, 96, 6, h, w], reference latents [N, 16, 1, h, w], shape cover [N, 1, 6, h, w]
    (:func:`shape_cover`), prompt index [N] into ``prompts``."""

    latents: Tensor
    context: Tensor
    references: Tensor
    shapes: Tensor
    prompt: Tensor
    prompts: list[str]


def shape_cover(spec: ClipSpec, frames: int) -> Tensor:
    """The share of each latent cell that the clip's shapes cover over the 4 frames of its latent
    frame: [1, frames // 4, H/8, W/8] in [0, 1] for frames ``0 .. frames-1``."""
    masks = torch.from_numpy(spec.masks(0, frames)).float()  # [T, H, W]
    per_latent = masks.unflatten(0, (frames // 4, 4)).mean(1)  # [t, H, W]
    return F.avg_pool2d(per_latent[:, None], 8).transpose(0, 1)  # [1, t, h, w]


def shape_weights(cover: Tensor, weight: float) -> Tensor:
    """Loss weights of latent cells from their shape cover [B, 1, t, h, w]: 1 plus ``weight`` times
    the largest cover in the cell's 3x3 neighbourhood, so the shapes and the cells along their
    edges count more than the background."""
    near = F.max_pool3d(cover, (1, 3, 3), stride=1, padding=(0, 1, 1))
    return 1 + weight * near


def weighted_mse(estimate: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """MSE of [B, C, t, h, w] with per-cell ``weights`` [B, 1, t, h, w], divided by their mean so
    the loss keeps a plain MSE's scale. Shapes cover a tenth or so of a clip and the background
    is most of a plain MSE, though the control, the prompt and the reference all tell about the
    shapes: their edges, their colour."""
    return (weights * (estimate - target).square()).mean() / weights.mean()


def encode_clip(encoder: VaceContextEncoder, spec: ClipSpec, kind: str,
                mask: np.ndarray | None) -> tuple[Tensor, Tensor, Tensor]:
    """One 24-frame clip through the engine's VACE path, chunk by chunk, as a new stream of
    ``encoder`` (reset first, as at a cut: its memo of the zero stream stays, so clips do not
    each encode it again): the clip's latents [16, 6, h, w], vace_context [96, 6, h, w] and
    reference latent [16, 1, h, w]."""
    vae = encoder.vae
    encoder.reset()
    frames = spec.frames(0, 24)
    control = control_frames(kind, spec, frames)
    like = next(vae.parameters())
    latents = vae.encode(to_video_tensor(to_unit(frames), like), vae.new_cache())
    contexts = []
    for start in (0, 12):
        part = slice(start, start + 12)
        composed, chunk_mask = compose_frames(frames[part], control[part], None if mask is None else mask[part],
                                              like=like)
        contexts.append(encoder.encode(composed, chunk_mask))
    reference = vae.encode_image(to_video_tensor(to_unit(spec.reference())[None], like))
    return latents[0], torch.cat(contexts, 2)[0], reference[0]


def build_pool(vae: TAEW, settings: TrainSettings, rng: np.random.Generator, clips: int) -> Pool:
    """Phase 2: ``clips`` synthetic clips, each with a control kind drawn by :data:`CONTROLS`."""
    kinds, shares = list(CONTROLS), np.array(list(CONTROLS.values()))
    prompts: list[str] = []
    latents, contexts, references, shapes, prompt_index = [], [], [], [], []
    encoder = VaceContextEncoder(vae)
    started = time.perf_counter()
    with torch.no_grad():
        for i in range(clips):
            spec = ClipSpec.draw(rng, settings.width, settings.height)
            kind = str(rng.choice(kinds, p=shares / shares.sum()))
            mask = box_mask(rng, 24, settings.width, settings.height) if rng.random() < settings.mask_share else None
            lat, ctx, ref = encode_clip(encoder, spec, kind, mask)
            latents.append(lat.half())
            contexts.append(ctx.half())
            references.append(ref.half())
            shapes.append(shape_cover(spec, 24).half())
            if spec.prompt not in prompts:
                prompts.append(spec.prompt)
            prompt_index.append(prompts.index(spec.prompt))
            if i % 100 == 0:
                log.info("pool: %d/%d clips, %.0f s", i, clips, time.perf_counter() - started)
    return Pool(torch.stack(latents), torch.stack(contexts), torch.stack(references), torch.stack(shapes),
                torch.tensor(prompt_index), prompts)


# --- phase 3: the DiT and its VACE branch ---------------------------------------------------

def new_dit(seed: int) -> tuple[WanModel, VaceBranch]:
    """The tiny DiT and its VACE branch, freshly initialised (``before_proj`` as a plain Linear,
    ``after_proj`` zero: the branch starts with no effect and learns one)."""
    torch.manual_seed(seed)
    model = WanModel(CONFIGS["tiny"])
    branch = VaceBranch(model.blocks, default_vace_layers(model.config.num_layers), model.config.dim,
                        model.config.patch_size)
    branch.vace_blocks[0].before_proj.reset_parameters()
    return model, branch


def draw_timesteps(rng: np.random.Generator, batch: int) -> Tensor:
    """Per-sample timesteps: three in four one of the four warped sampling steps, the rest from
    the shifted continuous schedule (t = 1000 * 5u / (1 + 4u))."""
    steps = timesteps_for(4)
    out = []
    for _ in range(batch):
        if rng.random() < 0.75:
            out.append(float(rng.choice(steps)))
        else:
            u = float(rng.uniform(0.02, 1.0))
            out.append(1000 * 5 * u / (1 + 4 * u))
    return torch.tensor(out)


def noised(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """x_t = (1 - sigma) x0 + sigma noise with per-sample sigma = t / 1000."""
    sigma = (t / 1000).view(-1, 1, 1, 1, 1)
    return (1 - sigma) * x0 + sigma * noise


@dataclass
class Batch:
    """One training batch drawn from the pool: the clips, their prompts and the VACE inputs."""

    latents: Tensor  # [B, 16, 6, h, w] the clips' latents (two chunks)
    context: Tensor  # [B, 96, 6, h, w] their vace_context
    weights: Tensor  # [B, 1, 6, h, w] loss weights (:func:`shape_weights`)
    prompt: Tensor  # [B, text_len, text_dim] prompt embeddings (some without their colour word)
    use_vace: bool  # VACE on for this step (off on ``vace_dropout`` of the steps)
    refs: Tensor | None  # reference entries [B, 96, 1, h, w] on ``reference_share`` of the VACE steps

    def extras(self, chunk: int) -> dict | None:
        """The forwards' extras for chunk 0 or 1 of the clips."""
        if not self.use_vace:
            return None
        return {EXTRAS_KEY: VaceConditioning(self.context[:, :, 3 * chunk:3 * chunk + 3], 1.0, self.refs)}


def draw_batch(pool: Pool, text: Tensor, settings: TrainSettings, rng: np.random.Generator) -> Batch:
    """``dit_batch`` clips; prompts lose their colour word on ``prompt_dropout`` of the samples,
    and on ``reference_colourless`` of them when references are given (so the reference alone
    carries the colour)."""
    b = settings.dit_batch
    index = torch.from_numpy(rng.integers(0, len(pool.prompt), b))
    use_vace = rng.random() >= settings.vace_dropout
    use_refs = use_vace and rng.random() < settings.reference_share
    drop = rng.random(b) < (settings.reference_colourless if use_refs else settings.prompt_dropout)
    colourless = len(pool.prompts)
    prompt = text[torch.where(torch.from_numpy(drop), colourless, pool.prompt[index])]
    refs = reference_context(pool.references[index].float()) if use_refs else None
    weights = shape_weights(pool.shapes[index].float(), settings.shape_weight)
    return Batch(pool.latents[index].float(), pool.context[index].float(), weights, prompt, use_vace, refs)


class Trainer:
    """The DiT and its VACE branch attached, their optimiser and, optionally, an averaged copy."""

    def __init__(self, model: WanModel, branch: VaceBranch, lr: float, ema: float | None) -> None:
        self.averaged = (copy.deepcopy(model), copy.deepcopy(branch)) if ema else None  # before the hooks
        self.ema = ema
        self.model, self.branch = model, branch
        self.injector = attach_vace(model, branch)
        model.train()
        branch.train()
        self.params = list(model.parameters()) + list(branch.parameters())
        self.averaged_params = ([] if self.averaged is None else
                                list(self.averaged[0].parameters()) + list(self.averaged[1].parameters()))
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=0.01)

    def step(self, loss: Tensor) -> None:
        """One optimiser step on ``loss`` (gradients clipped to norm 1), then the average."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        if self.averaged_params:
            with torch.no_grad():
                torch._foreach_lerp_(self.averaged_params, self.params, 1 - self.ema)

    def fresh_rings(self, batch: int, frame_tokens: int):
        """A new KV ring for the base (returned) and for the branch (the last step's holds its graph)."""
        self.injector.kv_cache = None
        return self.model.new_kv_cache(batch, frame_tokens)

    def result(self) -> tuple[WanModel, VaceBranch]:
        """The weights to keep (the average when there is one), hooks removed, frozen."""
        self.injector.detach()
        model, branch = self.averaged if self.averaged is not None else (self.model, self.branch)
        return model.eval().requires_grad_(False), branch.eval().requires_grad_(False)


def _log_progress(phase: str, step: int, total: int, recent: list[float], started: float) -> list[float]:
    if step % 100 == 0 or step == total - 1:
        log.info("%s step %d/%d: loss %.4f (mean of the last %d), %.0f s", phase, step, total,
                 sum(recent) / len(recent), len(recent), time.perf_counter() - started)
        return []
    return recent


def train_dit(pool: Pool, text: Tensor, settings: TrainSettings, rng: np.random.Generator,
              checkpoint: Callable[[WanModel, VaceBranch, int], None] | None = None) -> tuple[WanModel, VaceBranch, dict]:
    """Phase 3; ``text`` holds the embeddings of ``pool.prompts`` plus, last, the colourless prompt's.
    ``checkpoint(model, branch, step)`` gets the averaged weights every ``checkpoint_every`` steps."""
    trainer = Trainer(*new_dit(settings.seed), lr=settings.dit_lr, ema=settings.ema)
    model = trainer.model
    b = settings.dit_batch
    frame_tokens = (settings.height // 16) * (settings.width // 16)
    started, recent = time.perf_counter(), []
    for step in range(settings.dit_steps):
        set_lr(trainer.optimizer, lr_at(step, settings.dit_steps, settings.dit_lr, warmup=200))
        batch = draw_batch(pool, text, settings, rng)
        kv = trainer.fresh_rings(b, frame_tokens)
        chunk = 0 if rng.random() < settings.first_chunk_share else 1
        if chunk == 1:
            first = batch.latents[:, :, :3]
            with torch.no_grad():
                if rng.random() < settings.own_context_share:  # the context as the sampler leaves it
                    t_last = torch.full((b,), timesteps_for(4)[-1])
                    x_t = noised(first, torch.randn_like(first), t_last)
                    flow = model(x_t, t_last, batch.prompt, kv_cache=kv, write_cache=False, extras=batch.extras(0))
                    first = x_t - (t_last / 1000).view(-1, 1, 1, 1, 1) * flow
                model(first, 0.0, batch.prompt, kv_cache=kv, write_cache=True, extras=batch.extras(0))
        part = slice(3 * chunk, 3 * chunk + 3)
        x0 = batch.latents[:, :, part]
        noise = torch.randn_like(x0)
        t = draw_timesteps(rng, b)
        flow = model(noised(x0, noise, t), t, batch.prompt, kv_cache=kv, start_frame=3 * chunk, write_cache=False,
                     extras=batch.extras(chunk))
        loss = weighted_mse(flow, noise - x0, batch.weights[:, :, part])
        trainer.step(loss)
        recent.append(loss.item())
        recent = _log_progress("DiT", step, settings.dit_steps, recent, started)
        if checkpoint is not None and (step + 1) % settings.checkpoint_every == 0 and step + 1 < settings.dit_steps:
            checkpoint(*trainer.averaged, step + 1)
    model, branch = trainer.result()
    return model, branch, {"dit_seconds": round(time.perf_counter() - started)}


def train_chain(model: WanModel, branch: VaceBranch, pool: Pool, text: Tensor, settings: TrainSettings,
                rng: np.random.Generator) -> tuple[WanModel, VaceBranch, dict]:
    """Phase 4: train on the sampler's own chain (as Self-Forcing does). Each step picks a
    sampling step k of the live 4-step sampler, runs the sampler from noise for k steps without
    gradients (on a second chunk: after the whole first chunk was sampled and written to the ring
    at t=0 from its own estimate, exactly as the generator does), then trains step k to predict
    the clip's clean latents from the chain's own input (x0 loss)."""
    trainer = Trainer(model.train().requires_grad_(True), branch.train().requires_grad_(True),
                      lr=settings.chain_lr, ema=None)
    b = settings.dit_batch
    frame_tokens = (settings.height // 16) * (settings.width // 16)
    steps = timesteps_for(4)
    started, recent = time.perf_counter(), []

    def sample(x: Tensor, k: int, batch: Batch, kv, chunk: int) -> Tensor:
        """k steps of the sampler from noise x (no gradients); returns the input of step k."""
        for i in range(k):
            flow = model(x, steps[i], batch.prompt, kv_cache=kv, start_frame=3 * chunk, write_cache=False,
                         extras=batch.extras(chunk))
            x = add_noise(x0_from_flow(x, flow, steps[i]), torch.randn_like(x), steps[i + 1])
        return x

    for step in range(settings.chain_steps):
        set_lr(trainer.optimizer, lr_at(step, settings.chain_steps, settings.chain_lr, warmup=50))
        batch = draw_batch(pool, text, settings, rng)
        kv = trainer.fresh_rings(b, frame_tokens)
        chunk = 1 if rng.random() < settings.chain_second_chunk_share else 0
        k = int(rng.integers(0, len(steps)))
        with torch.no_grad():
            if chunk == 1:  # the first chunk as the generator makes it, then written at t=0
                x = sample(torch.randn_like(batch.latents[:, :, :3]), len(steps) - 1, batch, kv, 0)
                flow = model(x, steps[-1], batch.prompt, kv_cache=kv, write_cache=False, extras=batch.extras(0))
                model(x0_from_flow(x, flow, steps[-1]), 0.0, batch.prompt, kv_cache=kv, write_cache=True,
                      extras=batch.extras(0))
            x = sample(torch.randn_like(batch.latents[:, :, :3]), k, batch, kv, chunk)
        flow = model(x, steps[k], batch.prompt, kv_cache=kv, start_frame=3 * chunk, write_cache=False,
                     extras=batch.extras(chunk))
        part = slice(3 * chunk, 3 * chunk + 3)
        loss = weighted_mse(x0_from_flow(x, flow, steps[k]), batch.latents[:, :, part], batch.weights[:, :, part])
        trainer.step(loss)
        recent.append(loss.item())
        recent = _log_progress("chain", step, settings.chain_steps, recent, started)
    model, branch = trainer.result()
    return model, branch, {"chain_seconds": round(time.perf_counter() - started)}


# --- the whole run ----------------------------------------------------------------------------

def text_embeddings(encoder, prompts: list[str]) -> Tensor:
    """[len(prompts) + 1, text_len, text_dim]: each prompt's embedding, then the colourless one's."""
    with torch.no_grad():
        return encoder(prompts + [NO_COLOUR_PROMPT]).float()


def save_bundle(out: Path, model: WanModel, branch: VaceBranch, vae: TAEW, t5: nn.Module,
                settings: TrainSettings, figures: dict) -> None:
    """Write the weights folder: four safetensors files, the manifest and ``training.json``."""
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / WEIGHT_FILES["dit"])
    for role, module in (("vace", branch), ("tae", vae), ("t5", t5)):
        save_file({k: v.detach().contiguous() for k, v in module.state_dict().items()}, str(out / WEIGHT_FILES[role]))
    WeightsManifest(root=out, files=dict(WEIGHT_FILES), set_name="tiny-trained").save()
    (out / "training.json").write_text(json.dumps({"settings": asdict(settings), "figures": figures}, indent=2) + "\n")


def train(settings: TrainSettings, out: Path) -> dict:
    """All four phases; writes the weights folder ``out`` and returns the figures."""
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    started = time.perf_counter()
    vae, figures = train_autoencoder(settings, rng)
    pool_started = time.perf_counter()
    pool = build_pool(vae, settings, rng, settings.pool_clips)
    figures["pool_seconds"] = round(time.perf_counter() - pool_started)
    encoder = make_text_encoder("tiny", dtype=torch.float32, seed=settings.seed)

    def checkpoint(model: WanModel, branch: VaceBranch, step: int) -> None:
        save_bundle(out, model, branch, vae, encoder.model, settings, dict(figures, dit_steps_done=step))

    text = text_embeddings(encoder, pool.prompts)
    model, branch, dit_figures = train_dit(pool, text, settings, rng, checkpoint)
    figures.update(dit_figures)
    save_bundle(out, model, branch, vae, encoder.model, settings, dict(figures, dit_steps_done=settings.dit_steps))
    model, branch, chain_figures = train_chain(model, branch, pool, text, settings, rng)
    figures.update(chain_figures)
    figures["total_minutes"] = round((time.perf_counter() - started) / 60, 1)
    save_bundle(out, model, branch, vae, encoder.model, settings, figures)
    log.info("done in %.1f min: %s", figures["total_minutes"], out)
    return figures


def main(argv: list[str] | None = None) -> None:
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(prog="python -m vacelive.engine.tiny.train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="weights folder to write")
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    print(json.dumps(train(TrainSettings(**args), out), indent=2))


if __name__ == "__main__":
    main()
