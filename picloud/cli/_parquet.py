"""Events as a Parquet file: one column per field of the API's event, ``data``
and ``meta`` as JSON text, ``recorded_at`` a UTC timestamp; one row group per
page read, written as it comes (the file is complete once closed)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from picloud.domain.records import EventRecord

__all__ = ["SCHEMA", "ParquetEvents"]

SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("stream", pa.string()),
        ("version", pa.int64()),
        ("type", pa.string()),
        ("data", pa.string()),
        ("meta", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
    ]
)


class ParquetEvents:
    """Writes pages of events to ``path`` (zstd-compressed)."""

    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(str(path), SCHEMA, compression="zstd")

    def write(self, events: list[EventRecord]) -> None:
        columns = [
            pa.array([e.position for e in events], pa.int64()),
            pa.array([e.stream for e in events], pa.string()),
            pa.array([e.version for e in events], pa.int64()),
            pa.array([e.type for e in events], pa.string()),
            # JSON text; pyarrow takes bytes for a string column as UTF-8
            pa.array([bytes(e.data) for e in events], pa.string()),
            pa.array([bytes(e.meta) for e in events], pa.string()),
            pa.array([e.recorded_at for e in events], SCHEMA.field("recorded_at").type),
        ]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=SCHEMA))

    def __enter__(self) -> ParquetEvents:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._writer.close()
