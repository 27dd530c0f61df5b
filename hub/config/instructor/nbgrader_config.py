"""nbgrader settings of the instructor on the course hub (found through JUPYTER_CONFIG_PATH).

The course lives in the instructor's home, `~/mlpp-course` (the formgrader only works on a course
inside the home of the server it runs in): `source/<ID>/<ID>.ipynb` are copies of the repository's
`solutions/`, made by hub/start.py; `release/`, `submitted/`, `autograded/`, `feedback/` and
`gradebook.db` are nbgrader's. The solution and hidden-test markers come from the repository's
`nbgrader_config.py`, so a release made here equals `exercises/`.

Autograding goes through the same sandbox and limits as `mlpp grade`, and the same tamper checks.
A mistake in this file is only logged by nbgrader, which then grades unsandboxed with a default
exchange, so hub/start.py loads this file once before it starts the hub and refuses on an error.
"""
import os
from pathlib import Path

from mlpp import grading_guard, sandbox

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
REPO = Path(__file__).resolve().parents[3]

load_subconfig(str(REPO / "nbgrader_config.py"))  # noqa: F821 (markers, stubs, ignore list)

c.CourseDirectory.root = os.path.expanduser("~/mlpp-course")
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.course_id = os.environ["MLPP_COURSE_ID"]
c.Exchange.root = os.environ["MLPP_HUB_EXCHANGE"]


# Student code under the formgrader's autograde: the sandbox of `mlpp grade` (no network, no
# instructor home, token or course files; the data read-only) with its limits per cell and notebook,
# and the grader's tamper checks. The repository's config (loaded above) already sets up the sandbox;
# here its data folder becomes the hub's shared one.
sandbox.configure_nbgrader(c, data_dir=os.environ.get("MLPP_HUB_SHARED_DATA") or None)
grading_guard.configure_nbgrader(c)
