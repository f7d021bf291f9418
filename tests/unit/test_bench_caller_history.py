"""bench/caller_history.py measures what it says: the same card and agent with and without the caller-number
indexes, and the database left as migrated (the indexes back) for the next size."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from bench.caller_history import INDEXES, measure
from bench.common import measure_on_database
from cti.db import Database


async def _measure_then_list_indexes(db: Database, size: int) -> dict[str, Any]:
    result = await measure(db, size, 2)
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: {index["name"] for table in ("calls", "tickets", "recordings")
                                                  for index in inspect(sync).get_indexes(table)})
    return {**result, "indexes_after": names}


def test_both_schemas_give_the_same_history_and_the_indexes_come_back() -> None:
    [small, larger] = measure_on_database(None, [40, 400], _measure_then_list_indexes)
    for result in (small, larger):
        assert result["same_results"] is True
        assert set(INDEXES) <= result["indexes_after"]
        for kind in ("known", "first_time"):
            assert result[kind]["card_indexed_ms"] > 0 and result[kind]["card_without_ms"] > 0
    assert larger["rows"] == 400
