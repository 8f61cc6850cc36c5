"""The data plane's pure parts: how a pass cuts its batches, and the dtypes it hands back."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from ray_asd.runner.dataplane import batch_rows, plain_dtypes


def test_batches_keep_every_engine_busy_up_to_the_batch_size() -> None:
    assert batch_rows(64, 4, 64) == 16  # 4 batches, one per engine
    assert batch_rows(11, 2, 3) == 3  # the batch size caps it
    assert batch_rows(0, 2, 8) == 1


def test_arrow_backed_columns_come_back_in_the_engines_dtypes() -> None:
    engine = pd.DataFrame(
        {"answer": ["x", "y"], "tokens": [1, 2], "correct": [True, False], "nll": [0.5, 1.0]}
    )
    types = {"answer": pa.large_string(), "tokens": pa.int64(), "correct": pa.bool_()}
    arrow = engine.astype({c: pd.ArrowDtype(t) for c, t in types.items()})
    arrow["vector"] = [[1.0], [2.0]]  # an object column stays one
    assert isinstance(arrow["answer"].dtype, pd.ArrowDtype)
    pd.testing.assert_frame_equal(plain_dtypes(arrow), engine.assign(vector=[[1.0], [2.0]]))
