"""The teacher pool's plumbing that needs no engine (the vLLM pool: test_vllm.py)."""

from ray_asd.runner.teacher_pool import _split


def test_split_covers_the_batch_in_order() -> None:
    assert _split(5, 2) == [(0, 2), (2, 5)]
    assert _split(2, 3) == [(0, 1), (1, 1), (1, 2)]
