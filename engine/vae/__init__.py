"""Streaming video autoencoders: the Wan2.1 VAE and the tiny TAEW2.1, one interface."""

from .base import (
    LATENT_MEAN,
    LATENT_STD,
    StreamCache,
    VideoAutoencoder,
    denormalize_latents,
    load_state_dict_strict,
    normalize_latents,
)
from .factory import WEIGHT_FILES, make_autoencoder
from .taew import TAEW, TAEW_CONFIGS, TAEWConfig, TAEWStreamCache, fit_taew_checkpoint, load_taew
from .wan import WAN_VAE_CONFIGS, WanStreamCache, WanVAE, WanVAEConfig, load_wan_vae

__all__ = [
    "LATENT_MEAN", "LATENT_STD", "StreamCache", "VideoAutoencoder", "denormalize_latents",
    "load_state_dict_strict", "normalize_latents", "WEIGHT_FILES", "make_autoencoder", "TAEW",
    "TAEW_CONFIGS", "TAEWConfig", "TAEWStreamCache", "fit_taew_checkpoint", "load_taew", "WAN_VAE_CONFIGS",
    "WanStreamCache", "WanVAE", "WanVAEConfig", "load_wan_vae",
]
