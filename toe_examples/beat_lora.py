"""TouchDesigner example: a style LoRA on a fader, and prompt cues that land on the bar.

The camera's edges steer the model; the ``lora/style/scale`` fader blends a style LoRA in and out
live (0..2); the prompt cues are held by the engine until the next bar of the Ableton Link
session (``quantize = bar`` in the preset), so a cue fired a little early still lands on the one.
TouchDesigner's own Ableton Link CHOP joins the same session: its ``beat`` and ``bar`` channels
show the phase the engine quantises to, and setting the tempo there (or on ``/vacelive/tempo``)
moves everyone. Put a Wan2.1-1.3B LoRA file at ``weights/loras/style.safetensors`` (kohya,
ComfyUI, PEFT or diffusers layout) and install the Link extra (``pip install "vacelive[link]"``).

Run once inside TouchDesigner (Textport, Alt+T, or a Text DAT > Run Script)::

    import sys; sys.path.insert(0, r"C:/path/to/vacelive/toe_examples")
    import beat_lora; beat_lora.main()

It builds ``/project1/vacelive_beat_lora`` and saves only that component as ``toe_examples/beat_lora.tox``.

Then start the engine with the matching command (with ``--model 1.3B --weights-dir weights``):

    Windows (Spout):  vacelive run --preset beat_lora --source spout:vacelive_in --sink spout:vacelive_out --osc-reply 127.0.0.1:9002 --loras style=loras/style.safetensors
    macOS (Syphon):   vacelive run --preset beat_lora --source syphon:vacelive_in --sink syphon:vacelive_out --osc-reply 127.0.0.1:9002 --loras style=loras/style.safetensors
    NDI (any host):   vacelive run --preset beat_lora --source ndi:vacelive_in --sink ndi:vacelive_out --osc-reply 127.0.0.1:9002 --loras style=loras/style.safetensors
"""

from __future__ import annotations

import vacelive_td

NAME = "beat_lora"
PRESET = "beat_lora"
LORAS = ["style=loras/style.safetensors"]
"""The LoRA the engine loads (``--loras``): its scale is the ``lora/style/scale`` fader."""
ENGINE_FLAGS = "--loras " + " ".join(LORAS)
FADERS = [
    ("context_scale", 1.0),
    ("seed", 808),
    ("steps", 4),
    ("prompt_transition", 2),
    ("lora/style/scale", 1.0),
]
CUES = {
    "prompt_city": [("/vacelive/prompt", ["a neon city at night, rain, reflections"])],
    "prompt_desert": [("/vacelive/prompt", ["a desert of glass dunes under two moons"])],
    "prompt_ocean": [("/vacelive/prompt", ["a bioluminescent ocean, deep blue, drifting light"])],
    "on_the_bar": [("/vacelive/quantize", ["bar"])],
    "on_the_beat": [("/vacelive/quantize", ["beat"])],
    "at_once": [("/vacelive/quantize", ["off"])],
}


main = vacelive_td.example_main(__name__)
