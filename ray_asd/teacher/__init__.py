"""Teachers: one protocol (write a question from a seed, answer a question), several backends."""

from ray_asd.teacher.base import Teacher, TeacherOutput, approximate_tokens
from ray_asd.teacher.oracle import OracleTeacher
from ray_asd.teacher.prompts import Prompts, parse_answer, parse_question

__all__ = [
    "OracleTeacher",
    "Prompts",
    "Teacher",
    "TeacherOutput",
    "approximate_tokens",
    "parse_answer",
    "parse_question",
]
