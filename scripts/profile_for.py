"""cProfile a `python -m spacy_posattn ...` command for a fixed time, then write the top entries.

Training commands run for many minutes; this stops after SECONDS (SIGALRM) and writes
the 70 entries with the most cumulative time and the 50 with the most own time.

usage: python scripts/profile_for.py SECONDS OUTPUT_TXT COMMAND [ARGS ...]
  e.g. python scripts/profile_for.py 190 $OUT/prof.txt train-cached configs/posattn_minilm_gpu.cfg ...
"""
import cProfile
import os
import pstats
import runpy
import signal
import sys

seconds, output = int(sys.argv[1]), sys.argv[2]
profile = cProfile.Profile()


def stop(*_):
    profile.disable()
    with open(output, "w") as f:
        stats = pstats.Stats(profile, stream=f)
        stats.sort_stats("cumulative").print_stats(70)
        stats.sort_stats("tottime").print_stats(50)
    os._exit(0)


signal.signal(signal.SIGALRM, stop)
signal.alarm(seconds)
sys.argv = ["spacy_posattn"] + sys.argv[3:]
profile.enable()
try:
    runpy.run_module("spacy_posattn", run_name="__main__")
finally:
    stop()
