"""The RunEngine side of the engine: record documents and hand them on, nothing more."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .frames import FRAME_DOCUMENTS
from .registry import RecipeSpec, recipe_for

__all__ = ["DocumentRouter"]

log = logging.getLogger(__name__)


class DocumentRouter:
    """Turn a run's documents into the engine's work items and pass them to ``sink``.

    Items: ``("start", start, recipe name)``, ``("doc", name, doc)`` for documents that
    announce frames, ``("event", run_uid, stream, index, descriptor uid, seq_num, data,
    received)`` (``received``: ``time.monotonic()``; ``index`` counts the stream's
    events from 0) and ``("stop", stop)``.

    A stream whose data keys are all external (a fly scan's ``collect`` stream: frames
    and per-frame readbacks in files) has no events: its frames arrive with the
    StreamDatum documents that announce them. Each sequence number becomes an
    ``"event"`` item with empty ``data`` once every data key with a StreamResource
    has been announced up to it. A run whose ``plan_name`` no recipe serves is
    ignored with one log line: other plans run on the same RunEngine.

    Parameters
    ----------
    sink
        Receives the items; must not block (a queue's ``put``).
    recipes
        The recipes to choose from, by name.
    on_start
        Called with ``(run_uid, recipe name)`` for every run that will be analysed,
        before its start item is handed on.
    """

    def __init__(self, sink: Callable[[tuple[Any, ...]], None],
                 recipes: Mapping[str, RecipeSpec],
                 on_start: Callable[[str, str], None] | None = None) -> None:
        self.sink = sink
        self.recipes = dict(recipes)
        self.on_start = on_start
        self.run_uid: str | None = None
        self._streams: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        # Streams without events: descriptor uid -> its external data keys
        self._collected: dict[str, set[str]] = {}
        self._resource_keys: dict[str, str] = {}  # stream resource uid -> data key
        # (descriptor uid, data key) -> last sequence number announced + 1
        self._announced: dict[tuple[str, str], int] = {}
        self._arrived: dict[str, int] = {}  # descriptor uid -> next sequence number

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        handler = getattr(self, f"_{name}", None)
        if handler is not None:
            handler(doc)
        elif name in FRAME_DOCUMENTS and self.run_uid is not None:
            self.sink(("doc", name, doc))

    def _start(self, doc: dict[str, Any]) -> None:
        self.run_uid = None
        for table in (self._streams, self._counters, self._collected, self._resource_keys,
                      self._announced, self._arrived):
            table.clear()
        spec = recipe_for(doc, self.recipes)
        if spec is None:
            log.info("run %s (plan_name %r): no recipe serves this plan; not analysed "
                     "(recipes: %s)", doc.get("uid"), doc.get("plan_name"),
                     ", ".join(f"{s.name} for {', '.join(s.plan_names)}"
                               for s in self.recipes.values()))
            return
        self.run_uid = doc["uid"]
        if self.on_start is not None:
            self.on_start(doc["uid"], spec.name)
        self.sink(("start", doc, spec.name))

    def _descriptor(self, doc: dict[str, Any]) -> None:
        if self.run_uid is not None and doc.get("run_start", self.run_uid) == self.run_uid:
            self._streams[doc["uid"]] = doc.get("name", "primary")
            keys = doc.get("data_keys", {})
            if keys and all(key.get("external") for key in keys.values()):
                self._collected[doc["uid"]] = set(keys)

    def _stream_resource(self, doc: dict[str, Any]) -> None:
        if self.run_uid is None:
            return
        self._resource_keys[doc["uid"]] = doc["data_key"]
        self.sink(("doc", "stream_resource", doc))

    def _stream_datum(self, doc: dict[str, Any]) -> None:
        if self.run_uid is None:
            return
        self.sink(("doc", "stream_datum", doc))
        descriptor = doc["descriptor"]
        keys = self._collected.get(descriptor)
        key = self._resource_keys.get(doc["stream_resource"])
        if keys is None or key not in keys:
            return  # frames of a stream with events arrive with the events
        self._announced[descriptor, key] = int(doc["seq_nums"]["stop"])
        announced = [self._announced.get((descriptor, k), 1) for k in keys
                     if k in self._resource_keys.values()]
        first = self._arrived.get(descriptor, 1)
        self._arrived[descriptor] = max(first, min(announced))
        for seq_num in range(first, min(announced)):
            self._event({"descriptor": descriptor, "seq_num": seq_num, "data": {}})

    def _event(self, doc: dict[str, Any]) -> None:
        stream = self._streams.get(doc["descriptor"])
        if stream is None or self.run_uid is None:
            return
        index = self._counters.get(stream, 0)
        self._counters[stream] = index + 1
        self.sink(("event", self.run_uid, stream, index, doc["descriptor"],
                   doc.get("seq_num", index + 1), doc["data"], time.monotonic()))

    def _event_page(self, page: dict[str, Any]) -> None:
        for i, seq_num in enumerate(page["seq_num"]):
            self._event({"descriptor": page["descriptor"], "seq_num": seq_num,
                         "data": {k: v[i] for k, v in page["data"].items()}})

    def _datum_page(self, page: dict[str, Any]) -> None:
        kwargs = page["datum_kwargs"]
        for i, datum_id in enumerate(page["datum_id"]):
            self("datum", {"resource": page["resource"], "datum_id": datum_id,
                           "datum_kwargs": {k: v[i] for k, v in kwargs.items()}})

    def _stop(self, doc: dict[str, Any]) -> None:
        if self.run_uid is not None and doc["run_start"] == self.run_uid:
            self.sink(("stop", doc))
            self.run_uid = None
