"""fastgrad's benchmarks: `python bench/run.py` (the batch-size lab).

bench.common holds the shared timing, table, JSON, plot and data helpers;
bench.suites holds one module per suite (NAME, DEFAULT_BATCH_SIZES, run);
bench.peers holds the reference implementations fastgrad is compared with.
"""
