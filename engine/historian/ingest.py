"""One batch of samples into the store: tag ids, per-tag order, rollup deltas, one commit.

:class:`Ingest` keeps each tag's last numeric sample (loaded from the hour rollups the first
time a tag is seen) so that rollups are updated from the batch alone. A tag whose batch
starts before its last stored sample (a late source timestamp) gets the buckets it touches
rebuilt from the samples instead. When the fast path finds a sample already stored (a
replay after a crash), the batch is written again inserting only what is missing, and the
state of its tags is reloaded: a replay never counts a sample twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import islice
from operator import lt

from .catalog import Catalog
from .rollups import WIDTHS_US, DeltaRow, Prev, roll
from .store import Duplicate, SampleRow, Store

log = logging.getLogger(__name__)

PathRow = tuple[str, int, "bool | int | float | None", "str | None", int]
"""``(path, ts_us, value, text, quality)``: a sample as published and spooled (a number,
bool or None in ``value``, or a string in ``text``)."""


class Ingest:
    """Writes batches of :data:`PathRow` to a store, keeping rollups incremental."""

    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog
        #: tag id -> last numeric sample committed; absent: not loaded yet
        self.state: dict[int, Prev | None] = {}

    def write(self, batch: Sequence[PathRow]) -> int:
        """Store ``batch``; return how many samples were new. Raises on database errors."""
        if not batch:
            return 0
        by_tag: dict[int, list[PathRow]] = {}
        ids = self.catalog.ids_for(batch)
        for row, tag_id in zip(batch, ids, strict=True):
            rows = by_tag.get(tag_id)
            if rows is None:
                by_tag[tag_id] = [row]
            else:
                rows.append(row)
        self._load_state([t for t in by_tag if t not in self.state])
        rows_out: list[SampleRow] = []
        deltas: dict[int, list[DeltaRow]] = {w: [] for w in WIDTHS_US}
        rebuild: dict[int, tuple[int, int]] = {}
        new_state: dict[int, Prev] = {}
        for tag_id, rows in by_tag.items():
            times = [r[1] for r in rows]
            if len(times) > 1 and not all(map(lt, times, islice(times, 1, None))):
                rows = sorted({r[1]: r for r in rows}.values(), key=lambda r: r[1])
            rows_out += [(tag_id, ts, value, text, quality)
                         for _p, ts, value, text, quality in rows]
            nums = [(r[1], r[2]) for r in rows if r[2] is not None]
            if not nums:
                continue
            prev = self.state.get(tag_id)
            if prev is not None and nums[0][0] <= prev[0]:
                rebuild[tag_id] = (nums[0][0], max(prev[0], nums[-1][0]))
                new_state[tag_id] = max(prev, nums[-1])
                continue
            for w in WIDTHS_US:
                roll(tag_id, nums, prev, w, deltas[w])
            new_state[tag_id] = nums[-1]
        try:
            new = self.store.write(rows_out, deltas, rebuild)
        except Duplicate:
            log.info("history: %d sample(s) partly stored already (a replay); writing the "
                     "missing ones", len(rows_out))
            new = len(self.store.write_missing(rows_out))
            for tag_id in by_tag:
                self.state.pop(tag_id, None)
            return new
        except Exception:
            for tag_id in by_tag:
                self.state.pop(tag_id, None)
            raise
        self.state.update(new_state)
        return new

    def _load_state(self, tag_ids: list[int]) -> None:
        if not tag_ids:
            return
        found = self.store.last_values(tag_ids)
        for t in tag_ids:
            self.state[t] = found.get(t)

    def forget(self) -> None:
        """Drop the cached state (after a database failure: reload on next use)."""
        self.state.clear()
