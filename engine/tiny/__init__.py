"""The tiny default model: the tiny configs of the real code, trained here on synthetic shapes.

``weights/`` holds the trained DiT, VACE branch, autoencoder (TAEW tiny) and text encoder (umT5
tiny) as safetensors with a manifest, so they load strictly through the same loaders as real
checkpoints; ``weights/CARD.md`` says how they were made. :mod:`.train` makes them again from a
seed (``python3 tasks.py train-tiny``), on synthetic clips from :mod:`.shapes`.

It is meant to show the pipeline working (control steering it, ``context_scale``, prompts naming
colours, references). It draws the shapes the control shows as soft, blocky shapes in the
prompt's colour (or a reference image's, when the prompt names none), larger than they are,
moving evenly (the card has the figures). It is not a video model.
"""

from __future__ import annotations

from pathlib import Path

TINY_WEIGHTS = Path(__file__).resolve().parent / "weights"
"""The bundled weights folder of the trained tiny model."""

TINY_LABEL = "tiny model trained on synthetic shapes (soft coloured shapes, not video)"
