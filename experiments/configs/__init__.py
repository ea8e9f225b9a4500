"""Configs, one file per experiment: ``get_config(arg)`` returns an ``ml_collections.ConfigDict``.

``default.py`` holds every field; ``table1.py``, ``table2.py`` and ``table3.py`` reproduce the
paper's tables and expose their numbers as ``PAPER_RESULTS`` (keyed by the config's ``arg``);
``mnist_compare.py`` is the quick comparison on the embedded MNIST subset.
"""
