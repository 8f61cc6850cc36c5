"""Tasks: seed data loading, prompts, final-answer extraction and answer checking."""

from ray_asd.columns import DIFFICULTY
from ray_asd.tasks.base import TABLE_COLUMNS, HubDataset, Oracle, Task
from ray_asd.tasks.builtin import TASKS, make_task
from ray_asd.tasks.loading import DataSource, load_table

__all__ = [
    "DIFFICULTY",
    "TABLE_COLUMNS",
    "TASKS",
    "DataSource",
    "HubDataset",
    "Oracle",
    "Task",
    "load_table",
    "make_task",
]
