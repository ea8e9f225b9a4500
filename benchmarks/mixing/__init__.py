"""Mixing at the memory-bandwidth floor: the library's op against a streaming floor and its peers.

One command measures everything and writes ``benchmarks/results/mixing.json``:

    python -m benchmarks.mixing

See ``__main__.py`` for the flags (sizes, dtypes, methods, repeats, peers, train step) and
``benchmarks/README.md`` for the latest results.
"""
