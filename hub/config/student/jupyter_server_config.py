"""Jupyter server settings of a student on the course hub: no formgrader (it is the instructor's)."""
c = get_config()  # noqa: F821 (provided by traitlets)

c.ServerApp.jpserver_extensions = {"nbgrader.server_extensions.formgrader": False}
