"""The models layer under the student, the teacher and the raters: specs, loading, batching,
generation and teacher-forced scoring of causal LMs.

Importing this package imports neither torch nor transformers: what it exports (specs, the
cache) is what validating a config needs. The heavy parts are its modules ``loading``,
``batching`` and ``causal_lm``.
"""

from ray_asd.models.specs import (
    EMBEDDED_PREFIX,
    MARKER_FILE,
    TINY_PREFIX,
    check_model_spec,
    default_cache_dir,
    resolve_model,
)

__all__ = [
    "EMBEDDED_PREFIX",
    "MARKER_FILE",
    "TINY_PREFIX",
    "check_model_spec",
    "default_cache_dir",
    "resolve_model",
]
