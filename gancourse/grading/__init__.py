"""Homework and grading: the registry of homework sets, student versions, the sandboxed grader, Gradescope export."""
from gancourse.grading.spec import Expr, QuestionSpec, question

__all__ = ["Expr", "QuestionSpec", "question"]
