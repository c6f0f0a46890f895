"""Load generators and benchmarks (``python -m bench``); results are kept in ``bench/results``."""
