"""nbgrader settings of a student on the course hub (found through JUPYTER_CONFIG_PATH).

Students have their own unix accounts, so nbgrader names their submissions after them. The
Assignment List fetches exercises into the home folder (`~/<exercise>/`).
"""
import os

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = os.environ["MLPP_COURSE_ID"]
c.Exchange.root = os.environ["MLPP_HUB_EXCHANGE"]
