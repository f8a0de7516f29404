"""livedata: named, typed queries over your databases, served as JSON or Arrow.

Importing the package does nothing; the work starts in ``livedata.web.create_app`` or
``livedata.cli.main``.
"""

__version__ = "0.1.0"
