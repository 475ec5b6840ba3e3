"""The video pipeline: prompt -> causal DiT (KV cache, few steps) -> streaming VAE decode -> frames.

:class:`VideoPipeline` implements the loop's :class:`~engine.generator.Generator` protocol with
the real model code. With ``model = "tiny"`` it runs the tiny configs of the same code: with
the bundled weights trained on synthetic shapes (:mod:`engine.tiny`, the default, no download,
real time on a CPU), or, given no weights manifest, with random weights (for tests).

VACE (:mod:`engine.vace`) is attached to the DiT's blocks by hooks: each chunk's control frames,
masks, reference images and keyframes steer it with ``context_scale``; a chunk without any of
them (or with ``context_scale`` 0) runs the base model alone. ``VideoPipeline.mode`` names the
inferred VACE mode of the last chunk (``t2v``, ``control``, ``r2v+control``, ...).

Style LoRAs (:mod:`engine.model.lora`, the ``loras`` parameter) are attached the same way,
before compiling; each chunk's snapshot gives their scales (``lora/NAME/scale``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vacelive.engine.chunk import Chunk
from vacelive.engine.decode_thread import DecodeThread
from vacelive.engine.generator import PendingFrames
from vacelive.engine.model import CONFIGS, CausalGenerator, WanModel, compile_stack, load_model
from vacelive.engine.model.kv_cache import TextKVCache
from vacelive.engine.model.lora import StyleLoras, load_lora
from vacelive.engine.model.sequence import SequenceShard
from vacelive.engine.parallel import (
    LeaderGenerator,
    current_launch,
    parse_devices,
    module_bytes,
    start_vace_worker,
    start_workers,
)
from vacelive.engine.params import lora_scale_name, parse_lora_entries
from vacelive.engine.placement import Placement
from vacelive.engine.state import ParamStore
from vacelive.engine.text import PromptCache, PromptConditioner, RandomPromptEmbeddings, make_text_encoder
from vacelive.engine.tiny import TINY_LABEL
from vacelive.engine.vace import VaceBranch, VaceController, VaceHooks, attach_vace, default_vace_layers, graft_vace
from vacelive.engine.vae import VideoAutoencoder, make_autoencoder

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
RANDOM_TINY_LABEL = "tiny random-weight model (abstract patterns, for tests)"
WORKER_PARAMS = ("model", "weights_dir", "dtype", "width", "height", "attention", "compile")
"""What a worker process needs from the store to build the same DiT and VACE branch."""


def resolve_dtype(choice: str, device: str) -> torch.dtype:
    """``auto`` is bf16 on CUDA and fp32 on CPU."""
    if choice == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return DTYPES[choice]


def frames_to_uint8(video: Tensor) -> np.ndarray:
    """[1, 3, T, H, W] in [-1, 1] -> (T, H, W, 3) uint8."""
    video = video[0].float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return video.permute(1, 2, 3, 0).contiguous().cpu().numpy()


class _StepClock:
    """Milliseconds between successive laps; at each lap it waits for the work queued on the
    current stream (of the calling thread) of each CUDA device given, so a step's time is its own
    (and not that of the decode thread's stream, which keeps running)."""

    def __init__(self, devices: Iterable[torch.device]) -> None:
        self.streams = [torch.cuda.current_stream(d) for d in set(devices) if d.type == "cuda"]
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        for stream in self.streams:
            stream.synchronize()
        now = time.perf_counter()
        self.laps[name] = (now - self._last) * 1000.0
        self._last = now


@dataclass
class _Submitted:
    """A chunk's frames to come (from the decode thread, or already there), its step times and
    when its frames were ready (both completed by :meth:`VideoPipeline._decode`)."""

    timings: dict[str, float]
    frames: Future[np.ndarray] = field(default_factory=Future)
    ready_at: float = 0.0

    def result(self) -> np.ndarray:
        return self.frames.result()


class VideoPipeline:
    """Generates each chunk's 12 frames from its parameter snapshot.

    Per chunk: the prompt conditioner gives the (possibly transitioning) text embedding; the
    causal generator denoises 3 latent frames with ``steps`` steps and noise from (seed, chunk
    index), then writes its KV cache; the VAE decodes them with its own streaming cache (the
    first chunk after a reset gives 9 frames, every later one 12). With ``vace`` attached, the
    chunk's VACE inputs become the ``extras`` of every forward of the chunk.

    With the ``stages`` layout (:mod:`engine.placement`) the pipeline is pipelined
    (:class:`~engine.generator.PipelinedGenerator`): the latents go to the VAE's device and
    decode on a thread of their own (:mod:`engine.decode_thread`) while the caller submits the
    next chunk; ``generate`` still returns each chunk's frames, the same as on one device.
    """

    def __init__(self, causal: CausalGenerator, vae: VideoAutoencoder, prompts: PromptConditioner,
                 *, name: str, vace: VaceController | None = None, recache_by_default: bool = False,
                 loras: StyleLoras | None = None, placement: Placement | None = None,
                 memory: dict[str, int] | None = None) -> None:
        self.name = name
        self.placement = placement
        """Where each part runs (None: all on the DiT's device)."""
        self.memory = memory or {}
        """Bytes of each part (:data:`~engine.placement.PARTS`) where it runs."""
        self.recache_by_default = recache_by_default
        """What ``prompt_recache = auto`` means for these weights (on for LongLive's)."""
        self.causal = causal
        self.vae = vae
        self.prompts = prompts
        self.vace = vace
        self.loras = loras
        self.decode_cache = vae.new_cache()
        vae_weight = next(vae.parameters())  # type: ignore[attr-defined]
        self._vae_device, self._vae_dtype = vae_weight.device, vae_weight.dtype
        stages = placement is not None and placement.layout == "stages"
        self._decoder = DecodeThread(self._vae_device) if stages else None
        self.timings: dict[str, float] = {}
        """The step times (ms) of the last chunk decoded."""

    def placement_lines(self) -> list[str]:
        """What each device runs and the memory its parts take, one line per device."""
        return self.placement.lines(self.memory) if self.placement is not None else []

    @property
    def pipelined(self) -> bool:
        """Whether chunks decode on their own thread while the next one is submitted (``stages``)."""
        return self._decoder is not None

    @property
    def mode(self) -> str:
        """The VACE mode inferred for the last chunk (``t2v`` without VACE inputs).

        ``(inactive)`` is added when inputs were supplied but the branch did not run
        (``context_scale`` 0, or no VACE weights loaded).
        """
        if self.vace is None:
            return "t2v"
        mode = self.vace.mode
        return mode if mode == "t2v" or self.vace.active else f"{mode} (inactive)"

    @property
    def warnings(self) -> list[str]:
        """Reference or keyframe images that could not be loaded (the last good ones are used)."""
        return self.vace.errors if self.vace is not None else []

    def generate(self, chunk: Chunk) -> np.ndarray:
        """The output frames (N, H, W, 3) uint8 for ``chunk``."""
        return self.submit(chunk).result()

    @torch.inference_mode()
    def submit(self, chunk: Chunk) -> PendingFrames:
        """Denoise ``chunk`` now and decode it: on the decode thread when :attr:`pipelined`
        (after the chunks submitted before), else here before returning."""
        snapshot = chunk.snapshot
        clock = _StepClock({self.causal.device, self._vae_device})
        if self.loras is not None and self.loras.set_scales(
                {name: snapshot.get(lora_scale_name(name), scale) for name, scale in self.loras.scales.items()}):
            self.causal.text_cache = TextKVCache()  # cached text K/V came from the old scales
            clock.lap("lora")
        text = self.prompts.embed(snapshot["prompt"], snapshot["prompt_transition"], snapshot["prompt_blend"])
        clock.lap("text")
        recache = snapshot["prompt_recache"]
        if self.prompts.switched and (recache == "on" or recache == "auto" and self.recache_by_default):
            self.causal.recache(text)  # the window's frames under the new prompt, so it takes hold at once
            clock.lap("recache")
        extras = self.vace.prepare(chunk, first=self.causal.frame_index == 0) if self.vace is not None else None
        clock.lap("encode")
        latents = self.causal.generate_chunk(text, snapshot["seed"], snapshot["steps"], extras=extras)
        clock.lap("denoise")
        submitted = _Submitted(clock.laps)
        if self._decoder is None:
            submitted.frames.set_result(self._decode(latents, submitted))
            return submitted
        latents = latents.to(device=self._vae_device, dtype=self._vae_dtype)
        clock.lap("to_vae")
        submitted.frames = self._decoder.submit(lambda z: self._decode(z, submitted), latents)
        return submitted

    @torch.inference_mode()
    def _decode(self, latents: Tensor, submitted: _Submitted) -> np.ndarray:
        """The frames of the chunk denoised into ``latents``; its decode step times join its timings."""
        clock = _StepClock({self._vae_device})  # on the decode thread: starts when the decode does
        video = self.vae.decode(latents.to(device=self._vae_device, dtype=self._vae_dtype), self.decode_cache)
        clock.lap("decode")
        frames = frames_to_uint8(video)
        clock.lap("to_frames")
        submitted.timings.update(clock.laps)
        submitted.ready_at = time.monotonic()
        self.timings = submitted.timings
        return frames

    def warm_up(self, snapshot) -> float:
        """Generate throw-away chunks until the KV ring has been full once (a stream's first
        chunks and a steady-state one, with control and a mask when the snapshot's annotator and
        mask source give them) so that compilation, CUDA kernel selection and the prompt's
        encoding happen before the clock starts, then reset to a fresh stream, noise included.
        Returns the seconds it took."""
        started = time.perf_counter()
        height, width = self.causal.latent_shape[3] * 8, self.causal.latent_shape[4] * 8
        gray = np.full((12, height, width, 3), 128, np.uint8)
        control = gray if snapshot["annotator"] != "none" else None
        masks = np.ones((12, height, width), np.float32) if snapshot["mask_source"] != "none" else None
        for index in range(max(2, self.causal.chunks_to_fill)):
            self.generate(Chunk(index=index, epoch=0, frames=gray, control=control, masks=masks,
                                snapshot=snapshot, captured_at=[0.0] * 12))
        self.reset()
        self.causal.chunk_index = 0
        return time.perf_counter() - started

    def reset(self) -> None:
        """Hard cut: empty the KV caches (base and VACE), restart the VAE streams and the prompt
        state (once the decodes in flight are done: the decode cache is theirs until then)."""
        if self._decoder is not None:
            self._decoder.drain()
        self.causal.reset()
        self.decode_cache.reset()
        self.prompts.reset()
        if self.vace is not None:
            self.vace.reset()


def build_model(store: ParamStore, manifest, device: str, dtype: torch.dtype,
                random_weights: bool = False) -> WanModel:
    """The DiT: loaded strictly from the manifest's ``dit`` (+ ``lora``), or random: the tiny
    demo, or any size with ``random_weights`` (speed measurements without weights)."""
    name = store.get("model")
    if random_weights:
        log.warning("random weights for the %s model: for measuring speed only, the pictures mean nothing", name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            with torch.device(device):
                model = WanModel(CONFIGS[name])
        return model.to(dtype=dtype).eval().requires_grad_(False)
    if manifest is not None and manifest.has("dit"):
        lora = manifest.path("lora") if manifest.has("lora") else None
        model = load_model(manifest.path("dit"), lora=lora, lora_alpha=manifest.lora_alpha,
                           config=CONFIGS[name] if name != "tiny" else None, device=device, dtype=dtype,
                           which=manifest.dit_weights)
        log.info("DiT loaded from %s", manifest.path("dit"))
        return model
    if name != "tiny":
        raise FileNotFoundError(f"model {name} needs weights: give --weights-dir with its 'dit' file")
    log.warning("using the %s", RANDOM_TINY_LABEL)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = WanModel(CONFIGS["tiny"])
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def build_vae(store: ParamStore, manifest, device: str, dtype: torch.dtype,
              random_weights: bool = False) -> VideoAutoencoder:
    """The autoencoder chosen by ``vae``: real weights from the manifest, or random (tiny, or the
    real size with ``random_weights``)."""
    kind = store.get("vae")
    role = "vae" if kind == "wan" else "tae"
    if random_weights and store.get("model") != "tiny":
        return make_autoencoder(kind, None, config="real", device=device, dtype=dtype, random_ok=True)
    if store.get("model") == "tiny" and (manifest is None or not manifest.has(role)):
        return make_autoencoder(kind, None, config="tiny", device=device, dtype=dtype)
    if manifest is None:
        raise FileNotFoundError(f"the {kind} autoencoder needs weights: give --weights-dir naming '{role}'")
    config = "tiny" if store.get("model") == "tiny" else "real"
    return make_autoencoder(kind, manifest.path(role), config=config, device=device, dtype=dtype)


def build_prompts(store: ParamStore, manifest, device: str, dtype: torch.dtype,
                  random_weights: bool = False) -> PromptConditioner:
    """Prompt embeddings: tiny random encoder for the tiny model, umT5 or the on-disk cache otherwise
    (with ``random_weights``: fixed random embeddings of the model's size, cached nowhere)."""
    cache_dir = Path(store.get("prompt_cache"))
    if random_weights and store.get("model") != "tiny":
        cfg = CONFIGS[store.get("model")]
        return PromptConditioner(RandomPromptEmbeddings(cfg.text_len, cfg.text_dim), device=device, dtype=dtype)
    if store.get("model") == "tiny":
        weights = manifest.path("t5") if manifest is not None and manifest.has("t5") else None
        encoder = make_text_encoder("tiny", weights, device=device, dtype=dtype)
    elif manifest is not None and manifest.has("t5"):
        tokenizer = manifest.path("tokenizer") if manifest.has("tokenizer") else None
        encoder = make_text_encoder("real", manifest.path("t5"), device=device, dtype=dtype,
                                    tokenizer_dir=tokenizer)
    else:
        log.warning("no text encoder in the weights folder: only prompts in %s can be used", cache_dir)
        encoder = None
    return PromptConditioner(PromptCache(cache_dir, encoder), device=device, dtype=dtype)


def build_vace_branch(model: WanModel, manifest, random_weights: bool = False) -> VaceBranch:
    """The VACE branch for ``model``: ``vace_*`` grafted strictly from the manifest's ``vace``, or
    zero projections (no effect: the honest state without VACE weights); with ``random_weights``,
    random projections, so that the branch runs and costs what it costs."""
    cfg = model.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)  # the same branch in every process (sequence parallelism)
        branch = VaceBranch(model.blocks, default_vace_layers(cfg.num_layers), cfg.dim, cfg.patch_size)
        if random_weights:
            with torch.no_grad():
                for name, p in branch.named_parameters():
                    if "_proj." in name:
                        p.copy_(torch.randn(p.shape) * 0.02)
    if manifest is not None and manifest.has("vace") and not random_weights:
        graft_vace(branch, manifest.path("vace"))
        log.info("VACE weights grafted from %s", manifest.path("vace"))
    elif not random_weights:
        log.warning("no VACE weights in the weights folder: control, masks, references and keyframes "
                    "have no effect")
    return branch.eval().requires_grad_(False)


def placement_for(store: ParamStore, device: str) -> Placement:
    """Where the parts run: ``devices`` and ``layout`` (one device: everything on ``device``), or
    the ranks of the torchrun launch this process is rank 0 of."""
    launch = current_launch()
    if launch is None:
        return Placement.of(device, parse_devices(store.get("devices")), store.get("layout"))
    if store.get("devices") or store.get("layout") != "sequence":
        raise ValueError("under torchrun the launch gives the devices and the layout is sequence: "
                         "drop --devices and --layout")
    return Placement.launched_on(launch.device, launch.labels)


def build_generator(store: ParamStore, manifest, device: str, random_weights: bool = False) -> VideoPipeline:
    """Everything the generator needs, loaded before any source or sink opens (``random_weights``:
    the model's real size with random values, to measure speed without weights), placed on the
    devices as :func:`placement_for` says."""
    placement = placement_for(store, device)
    workers = {name: store.get(name) for name in WORKER_PARAMS}
    folder = None if manifest is None else str(manifest.root)
    if placement.sequence and parse_lora_entries(store.get("loras")):  # (the VACE branch takes no LoRA)
        raise ValueError("style LoRAs do not run with sequence parallelism yet: drop --loras, or use "
                         "--layout vace or stages")
    band_workers = (start_workers(list(placement.sequence), workers, folder, random_weights)
                    if placement.sequence and not placement.launched else None)
    sequence = SequenceShard.of() if placement.launched else band_workers.shard if band_workers else None
    vace_worker = (start_vace_worker((placement.dit, placement.vace), workers, folder, random_weights)
                   if placement.vace_worker else None)
    dtype = resolve_dtype(store.get("dtype"), placement.dit)
    model = build_model(store, manifest, placement.dit, dtype, random_weights)  # the workers build theirs meanwhile
    if band_workers is not None:
        band_workers.wait_ready()
    if vace_worker is not None:
        injector = vace_worker.attach(model)
    else:
        injector = attach_vace(model, build_vace_branch(model, manifest, random_weights))  # hooks before compiling
    loras = build_loras(store, model)
    if store.get("compile"):
        model.compile_blocks()
        if vace_worker is None:  # the worker compiles its own
            compile_stack(injector.branch.vace_blocks)
    width, height = store.get("width"), store.get("height")
    if sequence is not None:
        causal = LeaderGenerator(model, height, width, injector, sequence, attention=store.get("attention"))
    else:
        causal = CausalGenerator(model, height, width, attention=store.get("attention"))
    if causal.kernels is not None:
        log.info("attention kernels, in order: %s", ", ".join(k.name for k in causal.kernels))
    vae_dtype = resolve_dtype(store.get("dtype"), placement.vae)
    vae = build_vae(store, manifest, placement.vae, vae_dtype, random_weights)
    prompts = build_prompts(store, manifest, placement.vae, vae_dtype, random_weights)
    vace = VaceController(injector, vae, store.resolve_media, width, height)
    name = f"Wan2.1-{store.get('model')}"
    if store.get("model") == "tiny":
        name = RANDOM_TINY_LABEL if manifest is None else TINY_LABEL
    log.info("model: %s", name)
    vace_bytes = vace_worker.branch_bytes if vace_worker is not None else module_bytes(injector.branch)
    memory = _memory(model, causal, injector, vace_bytes, vae, prompts)
    for line in placement.lines(memory):
        log.info("placement: %s", line)
    return VideoPipeline(causal, vae, prompts, name=name, vace=vace, recache_by_default=is_longlive(manifest),
                         loras=loras, placement=placement, memory=memory)


def _memory(model: WanModel, causal: CausalGenerator, injector: VaceHooks, vace_bytes: int,
            vae: VideoAutoencoder, prompts: PromptConditioner) -> dict[str, int]:
    """Bytes of each part (:data:`~engine.placement.PARTS`); the VACE ring as it will be once made
    (one layer of the base's ring per VACE block)."""
    ring = causal.kv_cache.nbytes
    encoder = getattr(prompts.cache, "encoder", None)  # None: prompts from the cache only
    return {"DiT": module_bytes(model), "KV ring": ring, "VACE": vace_bytes,
            "VACE ring": ring * len(injector.vace_layers) // model.config.num_layers,
            "VAE": module_bytes(vae), "text encoder": module_bytes(getattr(encoder, "model", None))}


def build_loras(store: ParamStore, model: WanModel) -> StyleLoras | None:
    """The style LoRAs the store lists, read strictly and attached in ``lora_mode``; None without any."""
    entries = parse_lora_entries(store.get("loras"))
    if not entries:
        return None
    loras = []
    for name, path in entries:
        lora = load_lora(store.resolve_lora(path), model, name)
        log.info("LoRA %s: %s layout, %d layers, from %s", name, lora.format, len(lora.layers), path)
        loras.append(lora)
    scales = {name: store.get(lora_scale_name(name)) for name, _ in entries if lora_scale_name(name) in store.registry}
    return StyleLoras(model, loras, merged=store.get("lora_mode") == "merged", scales=scales)


def is_longlive(manifest) -> bool:
    """Whether the DiT comes from LongLive (fetched as that set, or its base file name)."""
    if manifest is None or not manifest.has("dit"):
        return False
    return manifest.set_name == "longlive" or Path(manifest.files["dit"]).name == "longlive_base.pt"
