"""The implicit VACE mode: inferred from what a chunk supplies (there is no mode parameter)."""

from __future__ import annotations


def infer_mode(*, control: bool = False, mask: bool = False, references: int = 0,
               keyframe_first: bool = False, keyframe_last: bool = False, outpaint: bool = False,
               inner_mask: bool = False) -> str:
    """Name what is in effect, parts joined with ``+`` in a fixed order.

    ``r2v`` (references), ``control`` (control frames), ``outpaint`` (the input placed smaller,
    the border generated), ``inpaint`` (a mask; with outpainting, only when a mask source also
    masks inside the placed input: ``inner_mask``), then ``extension:firstframe`` /
    ``extension:lastframe`` / ``extension:firstlastframe`` (keyframes); nothing at all is
    ``t2v``. E.g. ``r2v+control``, ``control+inpaint``, ``control+outpaint``.
    """
    parts = []
    if references:
        parts.append("r2v")
    if control:
        parts.append("control")
    if outpaint:
        parts.append("outpaint")
    if mask and (not outpaint or inner_mask):
        parts.append("inpaint")
    if keyframe_first or keyframe_last:
        which = "firstlast" if keyframe_first and keyframe_last else "first" if keyframe_first else "last"
        parts.append(f"extension:{which}frame")
    return "+".join(parts) or "t2v"
