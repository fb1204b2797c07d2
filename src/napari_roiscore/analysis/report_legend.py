"""Keys to the report's view: the spot colour bar and the ROI class legend (matplotlib only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["draw_view_keys"]


def draw_view_keys(fig, colour_scale, class_colours: Mapping[str, Sequence[float]]) -> None:
    """Draw, under the view, a horizontal colour bar (quantity, units) and the ROI class legend.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    colour_scale : ColourScale or None
        ``low``, ``high``, ``colormap`` (a matplotlib name) and ``label``.
    class_colours : mapping
        Class name -> RGB(A) in 0..1.
    """
    from matplotlib import colormaps
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    if colour_scale is not None:
        ax_bar = fig.add_axes((0.04, 0.375, 0.22, 0.012))
        ColorbarBase(ax_bar, cmap=colormaps[colour_scale.colormap],
                     norm=Normalize(colour_scale.low, colour_scale.high), orientation="horizontal")
        ax_bar.tick_params(labelsize=6)
        ax_bar.set_title(f"spots: {colour_scale.label}", fontsize=6.5, pad=2)
    if class_colours:
        ax_leg = fig.add_axes((0.30, 0.355, 0.18, 0.04))
        ax_leg.set_axis_off()
        handles = [Patch(facecolor="none", edgecolor=tuple(c[:3]), linewidth=2, label=name)
                   for name, c in class_colours.items()]
        ax_leg.legend(handles=handles, loc="center left", fontsize=6.5, ncol=min(3, len(handles)),
                      title="ROI classes", title_fontsize=6.5, frameon=False)
