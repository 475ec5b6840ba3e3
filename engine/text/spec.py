"""Prompt specs: ``"a forest:0.7|neon city:0.3"`` -> weighted prompt list."""

from __future__ import annotations

import re

_WEIGHT = re.compile(r"^(?P<prompt>.*?)\s*:\s*(?P<weight>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$", re.S)


def parse_prompt_spec(spec: str) -> list[tuple[str, float]]:
    """Split ``spec`` on ``|``; each part is ``prompt`` or ``prompt:weight`` (weight 1 by default).

    A colon not followed by a number stays part of the prompt. Weights are normalised to sum 1;
    they must be >= 0 with a positive sum. Repeated prompts have their weights added.
    """
    parts: dict[str, float] = {}
    for part in spec.split("|"):
        m = _WEIGHT.match(part.strip())
        prompt, weight = (m["prompt"].strip(), float(m["weight"])) if m else (part.strip(), 1.0)
        if not prompt:
            continue
        if weight < 0:
            raise ValueError(f"negative weight {weight} for {prompt!r} in prompt spec {spec!r}")
        parts[prompt] = parts.get(prompt, 0.0) + weight
    total = sum(parts.values())
    if not parts or total <= 0:
        raise ValueError(f"prompt spec {spec!r} has no prompt with a positive weight")
    return [(p, w / total) for p, w in parts.items()]
