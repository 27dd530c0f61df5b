"""Machine Learning in Particle Physics: the course library."""
__version__ = "0.1.0"
