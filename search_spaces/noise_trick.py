"""`noise-trick`: the seed study's noise trick on the procedural basicprop datasets, on and off.

The seed project rendered its BasicProp images not as clean binary masks but with a noisy
foreground (U(150, 240) of 255) on a noisy background (U(0, 60)), and found InfoGAN needed it on
the lines (`basicprop_noise`, trainables/procedural.py). Run it on `--dataset basicprop-line` and
`--dataset basicprop-rects` with `--seeds N`: the generator-side score says whether the code
learned to decide the line's position (the rectangles' heights) with and without the trick.
"""

from __future__ import annotations

from typing import Any

from ray import tune

DESCRIPTION = "basicprop_noise on/off (the seed study's noisy rendering of basicprop-line/-rects)"


def space() -> dict[str, Any]:
    return {"basicprop_noise": tune.grid_search([False, True])}
