"""Training callbacks (`[training] before_update`)."""
import resource
import sys
import time
from typing import Callable, Dict

from spacy.language import Language
from spacy.util import registry


@registry.callbacks("spacy-posattn.log_step_time.v1")
def create_log_step_time_v1(every: int = 50) -> Callable[[Language, Dict], None]:
    """Print seconds per training step every `every` steps, to time the loop.

    Use as `[training.before_update] @callbacks = "spacy-posattn.log_step_time.v1"`.
    The time between two prints includes any evaluation that happened then.

    every (int): Print after this many steps.
    RETURNS (Callable[[Language, Dict], None]): The callback.
    """
    state = {"start": None, "last": None}

    def log_step_time(nlp: Language, args: Dict) -> None:
        now = time.perf_counter()
        step = args["step"]
        if state["start"] is None:
            state["start"] = state["last"] = now
        elif step % every == 0:
            per_step = (now - state["last"]) / every
            print(
                f"[step-time] step {step} epoch {args['epoch']}: {per_step:.3f} s/step, "
                f"{now - state['start']:.0f} s since step 0, "
                f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
            state["last"] = now

    return log_step_time


@registry.callbacks("spacy-posattn.malloc_mmap_threshold.v1")
def create_malloc_mmap_threshold_v1(threshold: int = 4194304) -> Callable[[Language], Language]:
    """Serve allocations of `threshold` bytes or more with mmap (glibc's
    `mallopt(M_MMAP_THRESHOLD)`, as the MALLOC_MMAP_THRESHOLD_ variable does), so
    that freed tensors go back to the OS. Without it the heap fragments and a
    long CPU training grows by gigabytes. Does nothing where glibc is absent.

    Use as `[initialize.before_init] @callbacks = "spacy-posattn.malloc_mmap_threshold.v1"`.

    threshold (int): Size in bytes from which allocations use mmap; 0 leaves
        glibc's own (dynamic) threshold.
    RETURNS (Callable[[Language], Language]): The callback.
    """

    def set_threshold(nlp: Language) -> Language:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        if threshold and name and sys.platform.startswith("linux"):
            M_MMAP_THRESHOLD = -3
            ctypes.CDLL(name).mallopt(M_MMAP_THRESHOLD, threshold)
        return nlp

    return set_threshold
