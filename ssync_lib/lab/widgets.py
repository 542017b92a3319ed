"""The notebooks' interactive explorer (the one module that imports ipywidgets / IPython).

    widgets.explore(frames, {"attention": attn, "decoder": masks, "boundary": bnd}, num_labels=S,
                    interactive=interactive)

A frame slider, a slot selector and one toggle per map. Maps are soft per-slot maps (T, S, h, w)
or label maps (T, h, w) with -1 for unselected patches (see ``viz.draw_map``). Under papermill or
nbconvert nobody moves a slider, so notebooks pass their ``interactive`` parameter (set False by
the batch runners) and get the same maps as a static figure over several frames instead.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt

from ssync_lib.lab import viz


def explore(frames, maps: Mapping[str, object], num_labels: int, interactive: bool = True,
            frames_to_show: Sequence[int] | None = None, title: str | None = None, label: str = "slot"):
    """Show the explorer for one clip. ``frames`` (T, 3, H, W) in [0, 1]; ``maps`` name -> map; ``label``
    names the labels in the selector and the legend (``"slot"``, or ``"id"`` for instance masks).

    Interactive: displays the widgets and returns the container. Static: draws
    ``viz.plot_explorer`` over ``frames_to_show`` (default: up to 6 frames) and returns the figure.
    """
    if not maps:
        raise ValueError("explore needs at least one map")
    if not interactive:
        return viz.plot_explorer(frames, maps, num_labels, frames_to_show=frames_to_show, title=title, label=label)

    import ipywidgets as W
    from IPython.display import display

    num_frames = len(frames)
    frame = W.IntSlider(value=0, min=0, max=num_frames - 1, description="frame", continuous_update=False)
    slot = W.Dropdown(options=[(f"all {label}s", -1)] + [(f"{label} {s}", s) for s in range(num_labels)],
                      value=-1, description=label)
    toggles = {name: W.ToggleButton(value=True, description=name) for name in maps}
    out = W.Output()

    def redraw(_change=None) -> None:
        shown = {name: maps[name] for name, button in toggles.items() if button.value}
        with out:
            out.clear_output(wait=True)
            if not shown:
                print("switch on at least one map")
                return
            fig = viz.plot_explorer(frames, shown, num_labels, frames_to_show=[frame.value],
                                    slot=None if slot.value < 0 else slot.value, title=title, label=label)
            display(fig)
            plt.close(fig)

    for widget in (frame, slot, *toggles.values()):
        widget.observe(redraw, names="value")
    box = W.VBox([W.HBox([frame, slot]), W.HBox(list(toggles.values())), out])
    redraw()
    display(box)
    return box
