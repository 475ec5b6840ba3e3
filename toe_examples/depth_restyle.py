"""TouchDesigner example: depth-driven restyle of a camera.

The camera goes to vacelive, which turns it into a depth map (Depth Anything V2 Small) and
generates a new scene with the same depth layout; the result comes back into ``vacelive_out``,
and the depth map the model is given (the control preview) into ``vacelive_preview``.

Run once inside TouchDesigner (Textport, Alt+T, or a Text DAT > Run Script)::

    import sys; sys.path.insert(0, r"C:/path/to/vacelive/toe_examples")
    import depth_restyle; depth_restyle.main()

It builds ``/project1/vacelive_depth_restyle`` and saves only that component as ``toe_examples/depth_restyle.tox``
(your open project is not saved; drag the ``.tox`` into any project).
``main(transport="ndi")`` picks the transport (default: Spout on Windows, Syphon on macOS);
``main(transport="ndi", host="192.168.1.20", engine_name="GPUBOX")`` points the OSC and the NDI
return at an engine on another machine (``engine_name``: what `hostname` prints there).

Then start the engine with the matching command:

    Windows (Spout):  vacelive run --preset depth_restyle --source spout:vacelive_in --sink spout:vacelive_out --osc-reply 127.0.0.1:9002 --preview-sink spout:vacelive_preview
    macOS (Syphon):   vacelive run --preset depth_restyle --source syphon:vacelive_in --sink syphon:vacelive_out --osc-reply 127.0.0.1:9002 --preview-sink syphon:vacelive_preview
    NDI (any host):   vacelive run --preset depth_restyle --source ndi:vacelive_in --sink ndi:vacelive_out --osc-reply 127.0.0.1:9002 --preview-sink ndi:vacelive_preview
"""

from __future__ import annotations

import vacelive_td

NAME = "depth_restyle"
PRESET = "depth_restyle"
PREVIEW = True
"""The depth map the model is given comes back too (``--preview-sink``), into ``vacelive_preview``."""
FADERS = [
    ("context_scale", 1.1),
    ("seed", 7),
    ("steps", 4),
    ("prompt_transition", 6),
    ("depth_smoothing", 0.85),
]
CUES = {
    "depth": [("/vacelive/annotator", ["depth"])],
    "prompt_marble": [("/vacelive/prompt", ["a marble sculpture garden at dusk, volumetric light, cinematic"])],
    "prompt_jungle": [("/vacelive/prompt", ["an overgrown jungle temple, god rays through mist"])],
    "prompt_blend": [("/vacelive/prompt", ["a marble sculpture garden:0.6|an overgrown jungle temple:0.4"])],
}


main = vacelive_td.example_main(__name__)
