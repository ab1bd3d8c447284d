"""The TensorBoard side of the `tbpipe` tab: routes, assets and when the tab shows.

TensorBoard finds the plugin through the `tensorboard_plugins` entry point (pyproject.toml)
and loads `static/index.js` as an ES module in an iframe (`frontend_metadata`). Every asset
is a file of this package: nothing comes from the internet when the page is viewed. The
data routes answer JSON computed by `sweep_view`, `config_diff` and `media_view`. The table
and the curves come through `digest` (kept in the user's cache until a job's files change,
written as the sweep ends); the other views are kept in memory until a job's metrics.json
changes, so a reload costs only the check.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

logger = logging.getLogger(__name__)
PLUGIN_NAME = "tbpipe"
STATIC = Path(__file__).parent / "static"
ASSETS = {"/index.js": "text/javascript"}
#: the tab's name in TensorBoard's header, with room after it: when the tabs overflow the
#: header (a sweep writing scalars, images, histograms, text, hparams, graphs...), the
#: INACTIVE menu covers the end of the last tab, which a third-party plugin's always is, and
#: cut "TBPIPE" to "TBP"; eight no-break spaces are what it covers (checked at 1400 px)
TAB_NAME = "tbpipe" + "\u00a0" * 8


class TbpipePlugin(base_plugin.TBPlugin):
    """A sweep's runs grouped by setting: table, bands, config diff, images, histogram guide."""

    plugin_name = PLUGIN_NAME
    #: read the logdir's table and curves when TensorBoard starts (the load benchmark turns
    #: it off to time the tab's first reading on its own)
    read_ahead = True

    def __init__(self, context: base_plugin.TBContext):
        self._logdir = Path(context.logdir) if context.logdir else None
        self._lock = threading.RLock()  # a view may ask for the rows, kept the same way
        self._views: dict[tuple, tuple[tuple, Any]] = {}
        self._digest = None  # the logdir's SweepDigest, made on first use
        if self._logdir is not None and self.read_ahead:  # now, as TensorBoard does for its tabs
            threading.Thread(target=self._read_ahead, name="tbpipe-read-ahead", daemon=True).start()

    def _read_ahead(self) -> None:
        """The first view (table and curves) read before the tab is opened."""
        try:
            if self.is_active():
                with self._lock:
                    stamps = self._sweep_digest().stamps()
                    self._sweep_digest().table(stamps)
                    self._sweep_digest().curves(stamps)
        except Exception:  # a damaged logdir: the request itself will say what is wrong
            logger.warning("tbpipe tab: reading %s ahead failed", self._logdir, exc_info=True)

    def is_active(self) -> bool:
        """Shown for a logdir holding tbpipe runs (a `.hydra/` folder anywhere below)."""
        from pipeline.board_plugin.digest import job_dirs

        return self._logdir is not None and bool(job_dirs(self._logdir))

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name=TAB_NAME)

    def get_plugin_apps(self) -> dict[str, Any]:
        return {
            **{path: self._asset for path in ASSETS},
            "/sweep": self._sweep,
            "/curves": self._curves,
            "/config_diff": self._config_diff,
            "/images": self._images,
            "/image": self._image,
            "/histograms": self._histograms,
        }

    @wrappers.Request.application
    def _asset(self, request: wrappers.Request) -> wrappers.Response:
        name = request.path.rsplit("/", 1)[-1]
        body = (STATIC / name).read_bytes()
        return http_util.Respond(request, body, ASSETS[f"/{name}"])

    def _sweep_digest(self):
        """The logdir's table and curves, kept (digest.SweepDigest)."""
        if self._digest is None:
            from pipeline.board_plugin.digest import SweepDigest

            self._digest = SweepDigest(self._logdir)
        return self._digest

    @wrappers.Request.application
    def _sweep(self, request: wrappers.Request) -> wrappers.Response:
        with self._lock:  # one reading at a time: the digest is rewritten as it goes
            return self._json(request, self._sweep_digest().table())

    @wrappers.Request.application
    def _curves(self, request: wrappers.Request) -> wrappers.Response:
        with self._lock:
            return self._json(request, self._sweep_digest().curves())

    @wrappers.Request.application
    def _config_diff(self, request: wrappers.Request) -> wrappers.Response:
        from pipeline.board_plugin.config_diff import config_diff

        a, b = request.args.get("a"), request.args.get("b")
        return self._json(
            request, self._cached(("diff", a, b), lambda: config_diff(self._logdir, a, b))
        )

    @wrappers.Request.application
    def _images(self, request: wrappers.Request) -> wrappers.Response:
        from pipeline.board_plugin.media_view import images_by_setting

        tag = request.args.get("tag")
        return self._json(
            request, self._cached(("images", tag), lambda: images_by_setting(self._logdir, tag))
        )

    @wrappers.Request.application
    def _image(self, request: wrappers.Request) -> wrappers.Response:
        from pipeline.board_plugin.media_view import image_bytes

        found = image_bytes(self._logdir, request.args.get("run", ""), request.args.get("tag", ""))
        if found is None:
            return http_util.Respond(request, "no such image", "text/plain", code=404)
        return http_util.Respond(request, found[1], found[0])

    @wrappers.Request.application
    def _histograms(self, request: wrappers.Request) -> wrappers.Response:
        from pipeline.board_plugin.media_view import histogram_guide

        run, tag, step = (request.args.get(key) for key in ("run", "tag", "step"))
        key = ("histograms", run, tag, step)
        return self._json(
            request, self._cached(key, lambda: histogram_guide(self._logdir, run, tag, step))
        )

    def _cached(self, key: tuple, compute) -> Any:
        """The view for `key`, recomputed only when the logdir's runs changed since."""
        from pipeline.board_plugin.sweep_view import runs_stamp

        with self._lock:  # one computation at a time: 2 requests of a 1,000-run sweep would race
            stamp = runs_stamp(self._logdir)
            kept = self._views.get(key)
            if kept is not None and kept[0] == stamp:
                return kept[1]
            view = compute()
            self._views[key] = (stamp, view)
            return view

    @staticmethod
    def _json(request: wrappers.Request, view: Any) -> wrappers.Response:
        return http_util.Respond(request, json.dumps(view, allow_nan=False), "application/json")
