"""Write embedded tables to Parquet, with the skipped cells beside them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from polymodal.atomic import atomic_output
from polymodal.cache.embed import EmbeddedTable


def embedding_column_name(column: str) -> str:
    return f"{column}.embedding"


def write_embeddings(result: EmbeddedTable, output: Path) -> Path | None:
    """Write the table plus one ``<column>.embedding`` list column per embedded column.

    Absent cells are null, never zeros. Skipped cells go to ``<output stem>.skipped.csv``; its
    path is returned (None when nothing was skipped).
    """
    table = pa.Table.from_pandas(_plain(result.frame), preserve_index=False)
    for name, col in result.columns.items():
        width = col.width
        flat = pa.array(col.pooled.reshape(-1), type=pa.float32())
        mask = pa.array(~col.present)
        vectors = pa.FixedSizeListArray.from_arrays(flat, width, mask=mask)
        if embedding_column_name(name) in table.column_names:  # a re-embedded embed output
            table = table.drop_columns([embedding_column_name(name)])
        table = table.append_column(
            pa.field(embedding_column_name(name), vectors.type, metadata={"encoder": col.encoder}),
            vectors,
        )
    with atomic_output(output) as tmp:
        pq.write_table(table, tmp)
    skipped_path = output.with_name(output.stem + ".skipped.csv")
    if result.report.skipped:
        frame = pd.DataFrame([s.__dict__ for s in result.report.skipped])
        with atomic_output(skipped_path) as tmp:
            frame.to_csv(tmp, index=False)
        return skipped_path
    skipped_path.unlink(missing_ok=True)
    return None


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    # Mixed-type object columns (numbers and strings) cannot be stored by Arrow as they are.
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object:
            kinds = {type(v) for v in out[name].dropna()}
            if len(kinds) > 1:
                out[name] = out[name].map(lambda v: v if v is None or v != v else str(v))
    return out
