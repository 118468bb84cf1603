"""Job modules the worker tests load with ``--import`` (never imported by a payload)."""
