"""Choose and build a streaming autoencoder from config."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from .base import VideoAutoencoder
from .taew import TAEW, TAEW_CONFIGS, load_taew
from .wan import WAN_VAE_CONFIGS, WanVAE, load_wan_vae

WEIGHT_FILES = {"wan": "Wan2.1_VAE.pth", "tae": "taew2_1.pth"}


def make_autoencoder(kind: Literal["wan", "tae"] = "wan", weights: Path | str | None = None,
                     config: Literal["real", "tiny"] = "real", device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32, seed: int = 0, random_ok: bool = False) -> VideoAutoencoder:
    """Build the ``kind`` autoencoder ("wan": Wan2.1 VAE, "tae": TAEW2.1).

    ``weights``: the checkpoint file, or a folder holding it under its official name
    (``Wan2.1_VAE.pth`` / ``taew2_1.pth``). ``None`` means random init (seeded with ``seed``),
    allowed for the tiny config, and for the real one with ``random_ok`` (speed measurements).
    """
    if kind not in WEIGHT_FILES:
        raise ValueError(f"unknown autoencoder kind {kind!r}; expected 'wan' or 'tae'")
    if weights is None:
        if config != "tiny" and not random_ok:
            raise FileNotFoundError(
                f"the {config} {kind} autoencoder needs its weights file {WEIGHT_FILES[kind]}; "
                "random init is only allowed with config='tiny'")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = WanVAE(WAN_VAE_CONFIGS[config]) if kind == "wan" else TAEW(TAEW_CONFIGS[config])
            if isinstance(model, TAEW):
                calibrate_random_decoder(model)
        return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    path = Path(weights)
    if path.is_dir():
        path = path / WEIGHT_FILES[kind]
    if not path.is_file():
        raise FileNotFoundError(f"{kind} autoencoder weights not found: {path}")
    loader = load_wan_vae if kind == "wan" else load_taew
    return loader(path, device=device, dtype=dtype, config=config)


@torch.no_grad()
def calibrate_random_decoder(model: TAEW, mean: float = 0.5, std: float = 0.25) -> None:
    """Rescale a random-init TAEW's last conv so that random latents decode to visible pictures.

    A randomly initialised TAEW decoder outputs almost exactly 0 everywhere, which its [0, 1]
    clamp turns into black frames. This data-free step (in the spirit of LSUV initialisation)
    measures each output channel on random latents and sets the last conv so the channel has the
    given mean and std. Only for weightless models (the tiny demo); loaded weights are untouched.
    """
    last = model.decoder[-1]
    outputs: list[Tensor] = []
    handle = last.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    try:
        model.decode(torch.randn(1, model.z_dim, 3, 8, 8), model.new_cache())
    finally:
        handle.remove()
    out = torch.cat([o.transpose(0, 1).flatten(1) for o in outputs], dim=1)  # [channels, samples]
    scale = std / out.std(dim=1).clamp_min(1e-8)
    last.weight.mul_(scale.view(-1, *[1] * (last.weight.dim() - 1)))
    last.bias.copy_((last.bias - out.mean(dim=1)) * scale + mean)
