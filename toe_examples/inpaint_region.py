"""TouchDesigner example: inpainting a masked region.

A green rectangle (Rectangle TOP composited over the camera) marks the region to regenerate:
vacelive keys out #00ff00 (``mask_source chroma``) and generates new content there while the rest
of the picture is kept. Move or resize ``region`` (or paint green any other way) to steer it;
``mask_feather`` and ``mask_threshold`` are faders.

Run once inside TouchDesigner (Textport, Alt+T, or a Text DAT > Run Script)::

    import sys; sys.path.insert(0, r"C:/path/to/vacelive/toe_examples")
    import inpaint_region; inpaint_region.main()

It builds ``/project1/vacelive_inpaint_region`` and saves only that component as ``toe_examples/inpaint_region.tox``
(your open project is not saved; drag the ``.tox`` into any project).
``main(transport="ndi")`` picks the transport (default: Spout on Windows, Syphon on macOS);
``main(transport="ndi", host="192.168.1.20", engine_name="GPUBOX")`` points the OSC and the NDI
return at an engine on another machine (``engine_name``: what `hostname` prints there).

Then start the engine with the matching command:

    Windows (Spout):  vacelive run --preset inpaint_region --source spout:vacelive_in --sink spout:vacelive_out --osc-reply 127.0.0.1:9002
    macOS (Syphon):   vacelive run --preset inpaint_region --source syphon:vacelive_in --sink syphon:vacelive_out --osc-reply 127.0.0.1:9002
    NDI (any host):   vacelive run --preset inpaint_region --source ndi:vacelive_in --sink ndi:vacelive_out --osc-reply 127.0.0.1:9002
"""

from __future__ import annotations

import vacelive_td

NAME = "inpaint_region"
PRESET = "inpaint_region"
FADERS = [
    ("context_scale", 1.0),
    ("seed", 99),
    ("steps", 4),
    ("prompt_transition", 2),
    ("mask_feather", 8),
    ("mask_threshold", 0.4),
]
CUES = {
    "chroma_mask": [("/vacelive/mask_source", ["chroma"]), ("/vacelive/mask_key_color", ["#00ff00"])],
    "invert": [("/vacelive/mask_invert", [1])],
    "no_invert": [("/vacelive/mask_invert", [0])],
    "prompt_portal": [("/vacelive/prompt", ["a glowing portal to a starry nebula"])],
    "prompt_window": [("/vacelive/prompt", ["a window onto a stormy sea"])],
}


def build_control(comp, td):
    """Camera -> a green Rectangle TOP composited over it -> ``control``."""
    camera = comp.create(td.videodeviceinTOP, "camera")
    camera.nodeX, camera.nodeY = -200, -400
    region = comp.create(td.rectangleTOP, "region")
    region.nodeX, region.nodeY = 0, -400
    region.par.compoverinput = True  # draw the rectangle over the camera image
    region.par.fillcolorr, region.par.fillcolorg, region.par.fillcolorb = 0.0, 1.0, 0.0
    region.par.fillalpha = 1.0
    camera.outputConnectors[0].connect(region)
    control = comp.create(td.nullTOP, "control")
    control.nodeX, control.nodeY = 200, -400
    region.outputConnectors[0].connect(control)
    return control


main = vacelive_td.example_main(__name__)
