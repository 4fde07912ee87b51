"""paperlab: eleven recent machine-learning papers as tested, reproducible, benchmarked APIs.

Importing ``paperlab`` imports no system and no torch; import a system by name,
e.g. ``from paperlab.mowst import Mowst``.
"""

__version__ = "0.1.0"
