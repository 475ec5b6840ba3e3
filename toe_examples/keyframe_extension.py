"""TouchDesigner example: keyframe extension.

vacelive starts the stream from a keyframe image and/or converges it to another (VACE
extension: firstframe, lastframe, firstlastframe). The keyframes are files in the engine's media
folder (``--media-dir``, default ``media/``); the cues send their paths relative to it. The preset
sets no annotator, so the camera only keeps the video round trip alive; the keyframes and the
prompt drive the picture. Run ``cut`` after a new keyframe to start a fresh stream from it.

Run once inside TouchDesigner (Textport, Alt+T, or a Text DAT > Run Script)::

    import sys; sys.path.insert(0, r"C:/path/to/vacelive/toe_examples")
    import keyframe_extension; keyframe_extension.main()

It builds ``/project1/vacelive_keyframe_extension`` and saves only that component as ``toe_examples/keyframe_extension.tox``
(your open project is not saved; drag the ``.tox`` into any project).
``main(transport="ndi")`` picks the transport (default: Spout on Windows, Syphon on macOS);
``main(transport="ndi", host="192.168.1.20", engine_name="GPUBOX")`` points the OSC and the NDI
return at an engine on another machine (``engine_name``: what `hostname` prints there).

Then start the engine with the matching command:

    Windows (Spout):  vacelive run --preset keyframe_extension --source spout:vacelive_in --sink spout:vacelive_out --osc-reply 127.0.0.1:9002
    macOS (Syphon):   vacelive run --preset keyframe_extension --source syphon:vacelive_in --sink syphon:vacelive_out --osc-reply 127.0.0.1:9002
    NDI (any host):   vacelive run --preset keyframe_extension --source ndi:vacelive_in --sink ndi:vacelive_out --osc-reply 127.0.0.1:9002
"""

from __future__ import annotations

import vacelive_td

NAME = "keyframe_extension"
PRESET = "keyframe_extension"
FADERS = [
    ("context_scale", 1.0),
    ("seed", 2024),
    ("steps", 4),
    ("prompt_transition", 8),
]
CUES = {
    "first": [("/vacelive/keyframe_first", ["keyframes/start.png"])],
    "last": [("/vacelive/keyframe_last", ["keyframes/end.png"])],
    "first_and_last": [("/vacelive/keyframe_first", ["keyframes/start.png"]),
                       ("/vacelive/keyframe_last", ["keyframes/end.png"])],
    "clear": [("/vacelive/keyframe_first", [""]), ("/vacelive/keyframe_last", [""])],
    "no_control": [("/vacelive/annotator", ["none"])],
    "prompt": [("/vacelive/prompt", ["a slow dolly shot through a misty forest at dawn"])],
}


main = vacelive_td.example_main(__name__)
