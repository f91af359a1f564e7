"""A design's size in words (parameters and float32 megabytes), for the Train page's estimate line.

Worked out by the builder's shape-only analysis, which builds no model: the count is exact and takes
milliseconds once Keras is loaded, so the page can show it whenever the design changes.
"""

from __future__ import annotations

from neuralstudio.core.design import Design


def model_size_text(design: Design) -> str:
    """``Model: 12,730 parameters (0.05 MB as float32).``, or why the network cannot be built yet."""
    from neuralstudio.ml.builder import analyze  # Keras: imported when asked, off the GUI thread

    analysis = analyze(design.graph, build=False, loss=design.training.loss)
    if not analysis.ok:
        return "The network cannot be built yet: " + analysis.errors[0].message
    p = analysis.total_params
    return f"Model: {p:,} parameters ({p * 4 / 1e6:.2f} MB as float32)."
