"""The benchmarks' one output format: a plain-text table, one row per method and size, with
medians over repeats, a throughput and its ratio to a reference row of the same size."""

from __future__ import annotations

import statistics


def throughput_rows(
    seconds: dict[tuple[str, int], list[float]],
    tokens: dict[tuple[str, int], list[float]],
    reference: str,
) -> list[dict[str, object]]:
    """Rows of (method, size), from each repeat's seconds and tokens: the median seconds, the
    median tokens per second, and that over ``reference``'s median at the same size."""
    rates = {
        key: statistics.median(t / s for t, s in zip(tokens[key], times, strict=True))
        for key, times in seconds.items()
    }
    return [
        {
            "method": method,
            "size": size,
            "repeats": len(times),
            "median s": statistics.median(times),
            "tok/s": rates[(method, size)],
            f"vs {reference}": f"{rates[(method, size)] / rates[(reference, size)]:.2f}x",
        }
        for (method, size), times in seconds.items()
    ]


def print_table(rows: list[dict[str, object]]) -> None:
    """Columns as wide as their longest cell; numbers right-aligned, 2 decimals."""
    if not rows:
        return
    columns = list(rows[0])
    cells = [[_text(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
    )
    for row in cells:
        print(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def _text(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)
