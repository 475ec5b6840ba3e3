"""TouchDesigner example: pose-driven dancer.

The camera (a dancer, or anyone) goes to vacelive, which draws the body pose as an OpenPose
skeleton and generates a new character dancing the same moves; the result comes back into
``vacelive_out``. The pose faders switch hands and face on (0/1; the engine takes floats for bools).

Run once inside TouchDesigner (Textport, Alt+T, or a Text DAT > Run Script)::

    import sys; sys.path.insert(0, r"C:/path/to/vacelive/toe_examples")
    import pose_dancer; pose_dancer.main()

It builds ``/project1/vacelive_pose_dancer`` and saves only that component as ``toe_examples/pose_dancer.tox``
(your open project is not saved; drag the ``.tox`` into any project).
``main(transport="ndi")`` picks the transport (default: Spout on Windows, Syphon on macOS);
``main(transport="ndi", host="192.168.1.20", engine_name="GPUBOX")`` points the OSC and the NDI
return at an engine on another machine (``engine_name``: what `hostname` prints there).

Then start the engine with the matching command:

    Windows (Spout):  vacelive run --preset pose_dancer --source spout:vacelive_in --sink spout:vacelive_out --osc-reply 127.0.0.1:9002
    macOS (Syphon):   vacelive run --preset pose_dancer --source syphon:vacelive_in --sink syphon:vacelive_out --osc-reply 127.0.0.1:9002
    NDI (any host):   vacelive run --preset pose_dancer --source ndi:vacelive_in --sink ndi:vacelive_out --osc-reply 127.0.0.1:9002
"""

from __future__ import annotations

import vacelive_td

NAME = "pose_dancer"
PRESET = "pose_dancer"
FADERS = [
    ("context_scale", 1.2),
    ("seed", 1234),
    ("steps", 4),
    ("prompt_transition", 4),
    ("pose_hands", 1),
    ("pose_face", 0),
]
CUES = {
    "pose": [("/vacelive/annotator", ["pose"])],
    "prompt_chrome": [("/vacelive/prompt", ["a dancer made of liquid chrome on a dark stage, studio light"])],
    "prompt_ink": [("/vacelive/prompt", ["an ink-wash dancer on rice paper, flowing sleeves"])],
    "slerp": [("/vacelive/prompt_blend", ["slerp"])],
}


main = vacelive_td.example_main(__name__)
