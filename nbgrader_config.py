"""nbgrader settings for the course (read by `nbgrader ...`, `mlpp release` and `mlpp grade`).

Sources with solutions and hidden tests live in solutions/<ID>/<ID>.ipynb; the student
release is generated into exercises/<ID>/. `mlpp release` and `mlpp grade` copy this file
into a temporary course folder, so `root` below always means "the folder this file is in".
Use those two commands rather than `nbgrader` itself: they leave no gradebook.db or
release/ folder in the checkout and make the release byte-for-byte reproducible.
"""
import os

from mlpp.grading_guard import configure_nbgrader as configure_guard
from mlpp.sandbox import configure_nbgrader

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

# Course layout: one folder per exercise, named like its notebook.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Never copy editor or interpreter droppings into a release or a grading run.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]

# Solutions: the region between the markers becomes the stub below.
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Hidden tests: removed from the release, restored from the source when grading.
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"
c.ClearHiddenTests.enabled = True

# Releases carry no outputs (the sources are committed without them anyway).
c.ClearOutput.enabled = True

# Autograding: every submission's kernel runs in the grading sandbox (bubblewrap: no network, no
# course files, no home, no tokens) with the course's limits, among them the time per cell
# (mlpp.sandbox.CELL_TIMEOUT): the same for `mlpp grade` and for the hub's formgrader.
configure_nbgrader(c)
# Tampering checks (mlpp.grading_guard) just before and after the sandboxed Execute step: a test
# whose objects the submission rebound earns nothing, and the submission is flagged for review.
configure_guard(c)
