"""``/v1/models`` and ``/load_model`` wire schemas."""

from __future__ import annotations

import json

from app.protocol.model_catalog import LoadModelEvent, LoadProgress


def test_load_progress_always_carries_current_and_total() -> None:
    event = LoadModelEvent(
        status="loading", model="m@main", stage="download", progress=LoadProgress(current=0, total=None)
    )
    assert json.loads(event.model_dump_json(exclude_none=True))["progress"] == {"current": 0, "total": None}
