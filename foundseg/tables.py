"""Printed tables: what every chapter prints its numbers with, in fixed-width columns (rounded, so a notebook's
stored output compares what matters)."""
from __future__ import annotations


def text_table(rows, columns, widths, label: str = "", label_width: int | None = None, align: str = "<",
               fmts=".3f") -> str:
    """``rows`` (row name → values, one per column; or a list of (name, values) pairs, where values None makes
    the name a heading line) as text: a header line of ``label`` and ``columns``, then a line per row.

    The name column is ``label_width`` wide (default: the longest name or label) and aligned by ``align``
    (``"<"`` or ``">"``); each value column is right-aligned to its width in ``widths`` (one int for all) and
    formatted by its entry of ``fmts`` (one format for all); a string value is printed as it is.

    >>> print(text_table({"Grad-CAM": [0.4741, 0.42], "disc": [0.2526, "–"]}, ["mIoU", "seen"], 7, "method"))
    method     mIoU   seen
    Grad-CAM  0.474  0.420
    disc      0.253      –
    >>> print(text_table({0: [0.6], 800: [0.38]}, ["IoU"], 6, "t", label_width=4, align=">", fmts=".2f"))
       t   IoU
       0  0.60
     800  0.38
    >>> print(text_table([("ODISE", None), ("  head", [0.4]), ("CLIP", None), ("  head", [0.5])], ["all"], 6, "row"))
    row      all
    ODISE
      head 0.400
    CLIP
      head 0.500
    """
    columns = list(columns)
    widths = [widths] * len(columns) if isinstance(widths, int) else list(widths)
    fmts = [fmts] * len(columns) if isinstance(fmts, str) else list(fmts)
    if not len(widths) == len(fmts) == len(columns):
        raise ValueError(f"widths and fmts must give one entry per column ({len(columns)})")
    pairs = list(rows.items()) if isinstance(rows, dict) else list(rows)
    if label_width is None:
        label_width = max([len(label)] + [len(str(name)) for name, values in pairs if values is not None])
    lines = [f"{label:{align}{label_width}}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths))]
    for name, values in pairs:
        if values is None:
            lines.append(str(name))
            continue
        values = list(values)
        if len(values) != len(columns):
            raise ValueError(f"row {name!r} has {len(values)} values for {len(columns)} columns")
        lines.append(f"{str(name):{align}{label_width}}" + "".join(
            f"{v:>{w}}" if isinstance(v, str) else f"{v:>{w}{f}}" for v, w, f in zip(values, widths, fmts)))
    return "\n".join(lines)
