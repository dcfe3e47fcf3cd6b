"""Inline SVG bar charts drawn by hand (no JavaScript, no network): pure functions -> SVG text.

Every bar is a ``<rect class="bar">`` with a ``<title>`` (label and value) so that a browser
shows the value on hover and tests can count the bars.
"""

from __future__ import annotations

from html import escape
from typing import Callable, Sequence

FONT = "'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif"
COLOURS = ("#2f6fb0", "#d9822b", "#3a9b5c", "#c2413b", "#7b5ea7", "#8c6d46", "#c45e9c")


def fmt_int(v: float) -> str:
    """``12,345``."""
    return f"{int(round(v)):,}"


def fmt_yuan(v: float) -> str:
    """``12,345.67 元``."""
    return f"{v:,.2f} 元"


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def hbar_chart(labels: Sequence[str], values: Sequence[float], title: str,
               fmt: Callable[[float], str] = fmt_int, width: int = 760,
               colour: str = COLOURS[0]) -> str:
    """Horizontal bars, one row per label (for rules and districts)."""
    row, top, label_w, value_w = 26, 34, 230, 130
    height = top + row * max(1, len(labels)) + 12
    vmax = max([float(v) for v in values] + [0.0]) or 1.0
    span = width - label_w - value_w - 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}" font-family="{FONT}">',
           f'<text x="0" y="18" font-size="15" font-weight="bold">{escape(title)}</text>']
    if not labels:
        out.append(f'<text x="0" y="{top + 14}" font-size="13" fill="#666">无数据</text>')
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = top + i * row
        w = max(1.0, span * float(v) / vmax) if float(v) > 0 else 0.0
        out.append(f'<text x="{label_w - 8}" y="{y + 16}" font-size="13" '
                   f'text-anchor="end">{escape(str(lab))}</text>')
        out.append(f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{_num(w)}" height="{row - 8}" '
                   f'fill="{colour}"><title>{escape(str(lab))}: {escape(fmt(float(v)))}</title></rect>')
        out.append(f'<text x="{_num(label_w + w + 6)}" y="{y + 16}" font-size="12" '
                   f'fill="#333">{escape(fmt(float(v)))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def vbar_chart(labels: Sequence[str], values: Sequence[float], title: str,
               fmt: Callable[[float], str] = fmt_int, width: int = 760, height: int = 260,
               colour: str = COLOURS[1]) -> str:
    """Vertical bars over ordered labels (for months)."""
    left, top, bottom = 50, 34, 58
    plot_h = height - top - bottom
    n = max(1, len(labels))
    slot = (width - left - 10) / n
    bar_w = max(2.0, slot * 0.7)
    vmax = max([float(v) for v in values] + [0.0]) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}" font-family="{FONT}">',
           f'<text x="0" y="18" font-size="15" font-weight="bold">{escape(title)}</text>',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
           'stroke="#999"/>',
           f'<text x="{left - 6}" y="{top + 10}" font-size="11" text-anchor="end">'
           f'{escape(fmt(vmax))}</text>',
           f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>']
    if not labels:
        out.append(f'<text x="{left}" y="{top + 20}" font-size="13" fill="#666">无数据</text>')
    step = max(1, n // 12)
    for i, (lab, v) in enumerate(zip(labels, values)):
        h = plot_h * float(v) / vmax if float(v) > 0 else 0.0
        h = max(1.0, h) if float(v) > 0 else 0.0
        x = left + i * slot + (slot - bar_w) / 2
        out.append(f'<rect class="bar" x="{_num(x)}" y="{_num(top + plot_h - h)}" '
                   f'width="{_num(bar_w)}" height="{_num(h)}" fill="{colour}">'
                   f'<title>{escape(str(lab))}: {escape(fmt(float(v)))}</title></rect>')
        if i % step == 0:
            cx = x + bar_w / 2
            out.append(f'<text x="{_num(cx)}" y="{top + plot_h + 14}" font-size="10" '
                       f'text-anchor="end" transform="rotate(-45 {_num(cx)} {top + plot_h + 14})">'
                       f'{escape(str(lab))}</text>')
    out.append("</svg>")
    return "\n".join(out)
