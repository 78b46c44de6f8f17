"""The ``segscope`` command line."""
