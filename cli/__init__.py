"""The ``squeezelens`` command line: a thin client of the engine API."""
