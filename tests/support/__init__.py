"""Helpers the tests share (fixtures, harnesses, sample projects), imported as ``support.<name>``.

Not test modules: pytest does not collect them (``pythonpath = ["tests"]`` in pyproject.toml
puts this package on the path). ``pytest_plugins = ("support.auth",)`` loads the fixtures of
one of them into a test module.
"""
