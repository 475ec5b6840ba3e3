"""TouchDesigner example: reference-style R2V.

vacelive restyles the camera's edges in the look of up to three reference images (R2V): the
references condition the generation and never appear themselves. Put the images in the engine's
media folder (``--media-dir``, default ``media/``); the cues send their paths relative to it
(``style.png``, ``style_2.png``). A path that is missing or outside the media folder is refused
with ``/vacelive/error``, which shows up in ``oscout1``.

Run once inside TouchDesigner (Textport, Alt+T, or a Text DAT > Run Script)::

    import sys; sys.path.insert(0, r"C:/path/to/vacelive/toe_examples")
    import reference_style; reference_style.main()

It builds ``/project1/vacelive_reference_style`` and saves only that component as ``toe_examples/reference_style.tox``
(your open project is not saved; drag the ``.tox`` into any project).
``main(transport="ndi")`` picks the transport (default: Spout on Windows, Syphon on macOS);
``main(transport="ndi", host="192.168.1.20", engine_name="GPUBOX")`` points the OSC and the NDI
return at an engine on another machine (``engine_name``: what `hostname` prints there).

Then start the engine with the matching command:

    Windows (Spout):  vacelive run --preset reference_style --source spout:vacelive_in --sink spout:vacelive_out --osc-reply 127.0.0.1:9002
    macOS (Syphon):   vacelive run --preset reference_style --source syphon:vacelive_in --sink syphon:vacelive_out --osc-reply 127.0.0.1:9002
    NDI (any host):   vacelive run --preset reference_style --source ndi:vacelive_in --sink ndi:vacelive_out --osc-reply 127.0.0.1:9002
"""

from __future__ import annotations

import vacelive_td

NAME = "reference_style"
PRESET = "reference_style"
FADERS = [
    ("context_scale", 0.9),
    ("seed", 42),
    ("steps", 4),
    ("prompt_transition", 4),
    ("canny_low", 80),
    ("canny_high", 180),
]
CUES = {
    "reference_on": [("/vacelive/reference_1", ["style.png"])],
    "reference_two": [("/vacelive/reference_1", ["style.png"]), ("/vacelive/reference_2", ["style_2.png"])],
    "reference_off": [("/vacelive/reference_1", [""]), ("/vacelive/reference_2", [""])],
    "edge": [("/vacelive/annotator", ["edge"])],
    "prompt": [("/vacelive/prompt", ["a portrait in the style of the reference, painterly, rich texture"])],
}


main = vacelive_td.example_main(__name__)
