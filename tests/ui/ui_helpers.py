"""Small Playwright helpers for the app's pages (Panel renders widgets inside open shadow roots,
which Playwright's CSS locators pierce)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

__all__ = ["open_page", "open_tab", "text_of", "legend_labels", "drag_handle", "wait_until", "distinct_colours",
           "plot_canvases", "plot_colour_counts"]

# Labels of the items of every Bokeh Legend in the page's documents (legends are drawn on canvas, not in
# the DOM). Items are read through their Legend: replaced LegendItems linger in ``all_models``.
_LEGEND_JS = """() => {
  const out = [];
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.type === 'Legend')
        for (const item of m.items)
          if (item.label && item.label.value !== undefined) out.push(item.label.value);
  return out;
}"""


def wait_until(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.2, what: str = ""):
    """Poll ``condition`` until it returns something truthy; raise AssertionError after ``timeout``."""
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or condition}")


def open_page(page, url: str) -> float:
    """Go to ``url`` and wait for the first drawn plot; return the seconds it took."""
    start = time.time()
    page.goto(url)
    page.wait_for_selector("canvas", timeout=60_000)
    return time.time() - start


def open_tab(page, name: str) -> None:
    """Click the tab called ``name`` and wait for it to be the active one."""
    page.locator(".bk-tab", has_text=name).first.click()
    wait_until(lambda: "bk-active" in (page.locator(".bk-tab", has_text=name).first.get_attribute("class") or ""),
               what=f"tab {name!r} to open")


def text_of(page, css: str) -> str:
    """Visible text of a Markdown pane with css class ``css`` ('' while not rendered)."""
    loc = page.locator(f".{css} p")
    return loc.first.inner_text() if loc.count() else ""


def legend_labels(page) -> list[str]:
    """Every legend label in the page's Bokeh documents."""
    return page.evaluate(_LEGEND_JS)


def drag_handle(page, container_css: str, dx: float) -> None:
    """Drag the slider handle inside ``.container_css`` by ``dx`` pixels, as a user would."""
    handle = page.locator(f".{container_css} .noUi-handle").first
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=6)
    page.mouse.up()


def plot_canvases(page, min_width: int = 150) -> list:
    """The visible plot canvases of the page (Bokeh draws each plot on a canvas)."""
    # One round trip for every canvas's size: measuring them one by one is slow on a busy machine.
    sizes = page.locator("canvas").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })")
    canvases = page.locator("canvas")
    return [canvases.nth(i) for i, (w, h) in enumerate(sizes) if w >= min_width and h >= 100]


def plot_colour_counts(page, attempts: int = 4) -> list[int]:
    """Distinct colours of every visible plot; retried when Bokeh replaces a canvas mid-way."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return [distinct_colours(c.screenshot(timeout=10_000)) for c in plot_canvases(page)]
        except Exception as err:  # noqa: BLE001 - playwright: canvas detached during a re-layout
            last = err
            time.sleep(1.0)
    raise AssertionError(f"could not screenshot the plots: {last}")


def distinct_colours(png: bytes) -> int:
    """Number of distinct RGB colours in a PNG (an empty plot has only a handful)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return len(image.getcolors(maxcolors=1 << 24))
