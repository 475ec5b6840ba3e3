"""One stream's VACE state for the pipeline: media slots, context encoder, injector, mode.

Per chunk (:meth:`VaceController.prepare`): the path parameters of the snapshot are followed
(images reloaded only when a value changes), the mode is inferred from what is supplied, and
the chunk's :class:`VaceConditioning` is built, or ``None`` when the chunk carries no VACE input,
``context_scale`` is 0 or the branch has no weights (zero ``after_proj``): the base model then
runs alone, exactly and at its own cost.

Keyframes in a never-ending stream:

- ``keyframe_first`` applies to the first chunk after each hard cut (and the first chunk of
  the stream): its frame 0, output frame 0, is the keyframe (mask 0). Setting it does not cut
  by itself: send ``cut`` to start again from it.
- ``keyframe_last`` applies to every chunk while it is set: each chunk's last output frame
  (input frame ``LAST_KEYFRAME_INDEX``) is pinned to the keyframe (mask 0), so the stream
  travels to it within the next chunk and then keeps returning to it, moving in between;
  clearing it releases the stream. With both set, the first chunk after a cut goes from the
  first keyframe to the last one (firstlastframe).

When VACE becomes active again after chunks without it, its streams (the VAE encoder caches,
the mask stream and the branch's KV ring) restart: they missed those chunks. A fresh VAE
stream groups frames exactly like a running one (frame 0 alone, then 1..4, 5..8), so the
latents stay aligned in time with the base's chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vacelive.engine.chunk import Chunk
from vacelive.engine.preview import REFERENCE_PARAMS
from vacelive.engine.vae import VideoAutoencoder

from .context import VaceContextEncoder, compose_frames, reference_context, to_unit, to_video_tensor
from .inject import EXTRAS_KEY, VaceConditioning, VaceHooks
from .media import MediaSlot
from .mode import infer_mode

KEYFRAME_PARAMS = ("keyframe_first", "keyframe_last")


class VaceController:
    """Turns each chunk (frames, control, masks, snapshot) into the extras of its forwards."""

    def __init__(self, injector: VaceHooks, vae: VideoAutoencoder, resolver: Callable[[str], Path],
                 width: int, height: int) -> None:
        self.injector = injector
        self.vae = vae
        self.encoder = VaceContextEncoder(vae)
        self.slots = {name: MediaSlot(name, resolver, width, height) for name in REFERENCE_PARAMS + KEYFRAME_PARAMS}
        self.mode = "t2v"  # of the last prepared chunk
        self.active = False  # whether the last chunk ran the branch
        self._like = next(vae.parameters())  # type: ignore[attr-defined]
        self._latents: dict[str, tuple[int, Tensor]] = {}  # slot -> (image version, [1, 16, 1, h, w])

    @property
    def errors(self) -> list[str]:
        """Why asked-for images could not be loaded (their slots keep the last good image)."""
        return [slot.error for slot in self.slots.values() if slot.error]

    def reset(self) -> None:
        """Hard cut: restart the VAE encoder caches, the mask stream and the branch's KV ring."""
        self.encoder.reset()
        self.injector.reset()
        self.active = False

    def prepare(self, chunk: Chunk, first: bool) -> dict[str, Any] | None:
        """The ``extras`` for the chunk's forwards, or None to run the base alone.

        ``first``: the chunk is the first after a hard cut (``keyframe_first`` applies).
        """
        snapshot = chunk.snapshot
        images = {name: slot.update(str(snapshot.get(name) or "")) for name, slot in self.slots.items()}
        references = [name for name in REFERENCE_PARAMS if images[name] is not None]
        keyframe_first = images["keyframe_first"] if first else None
        keyframe_last = images["keyframe_last"]
        self.mode = infer_mode(control=chunk.control is not None, mask=chunk.masks is not None,
                               references=len(references), keyframe_first=keyframe_first is not None,
                               keyframe_last=keyframe_last is not None,
                               outpaint=float(snapshot.get("outpaint_scale", 1.0)) < 1.0,
                               inner_mask=snapshot.get("mask_source", "none") != "none")
        scale = float(snapshot.get("context_scale", 1.0))
        if self.mode == "t2v" or scale == 0.0 or self.injector.branch_is_zero():
            self.active = False
            return None
        if not self.active:
            self.reset()
        self.active = True
        frames, mask = compose_frames(chunk.frames[..., :3], chunk.control, chunk.masks, keyframe_first, keyframe_last,
                                      like=self._like)
        context = self.encoder.encode(frames, mask)  # [1, 96, 3, h, w]
        refs = None
        if references:
            refs = reference_context(torch.cat([self._reference_latent(name) for name in references], 2))
        return {EXTRAS_KEY: VaceConditioning(context, scale, refs)}

    def _reference_latent(self, name: str) -> Tensor:
        """The slot's image encoded once per image with ``encode_image``: [1, 16, 1, h, w]."""
        slot = self.slots[name]
        cached = self._latents.get(name)
        if cached is None or cached[0] != slot.version:
            image = to_video_tensor(to_unit(slot.image)[None], self._like)  # [1, 3, 1, H, W]
            cached = (slot.version, self.vae.encode_image(image))
            self._latents[name] = cached
        return cached[1]
