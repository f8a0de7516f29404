"""The ``livedata`` command's groups, one module each (``livedata.cli`` assembles them).

A command module imports only the standard library and typer at import time; what a command
runs (pyarrow, the service, uvicorn, the study) is imported in its body. So ``livedata
--help`` answers at once, and a command that needs an install extra says which.
"""
