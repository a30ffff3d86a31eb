"""Training callbacks (`[training] before_update`) and glibc's malloc settings."""
import ctypes
import ctypes.util
import resource
import sys
import time
from functools import lru_cache
from typing import Any, Callable, Dict, Optional

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
        libc = _glibc()
        if threshold and libc is not None:
            M_MMAP_THRESHOLD = -3
            libc.mallopt(M_MMAP_THRESHOLD, threshold)
        return nlp

    return set_threshold


@lru_cache(maxsize=1)
def _glibc() -> Optional[Any]:
    """RETURNS (Optional[ctypes.CDLL]): The C library where it is glibc, else None."""
    name = ctypes.util.find_library("c")
    if not (name and sys.platform.startswith("linux")):
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "malloc_trim") else None


def malloc_trim() -> bool:
    """Give the free memory that glibc's heap holds back to the OS (`malloc_trim(0)`).

    RETURNS (bool): Whether it was called (False where glibc is absent).
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


@registry.callbacks("spacy-posattn.malloc_trim.v1")
def create_malloc_trim_v1(
    every: int = 100, then: Optional[Callable[[Language, Dict], None]] = None
) -> Callable[[Language, Dict], None]:
    """Return the heap's free memory to the OS every `every` training steps, then
    call `then` (another `before_update` callback, e.g. log_step_time) at every step.

    Freed tensors below the mmap threshold (`malloc_mmap_threshold.v1`) stay in
    glibc's heap, which fragments: stage 1 on one-sentence Docs grew by about
    1 GB of such memory a minute and ran out of 24 GB in its fifth epoch; one
    malloc_trim on the running process took it from 8.4 to 1.2 GB. Does nothing
    where glibc is absent. `train-cached` calls it as `spacy train` does.

    Use as `[training.before_update] @callbacks = "spacy-posattn.malloc_trim.v1"`.

    every (int): Trim after this many steps; 0 never trims.
    then (Optional[Callable[[Language, Dict], None]]): Called at every step after the trim.
    RETURNS (Callable[[Language, Dict], None]): The callback.
    """
    if every < 0:
        raise ValueError(f"malloc_trim.v1: every must be >= 0 (steps between trims), not {every}")

    def before_update(nlp: Language, args: Dict) -> None:
        if every and args["step"] and args["step"] % every == 0:
            malloc_trim()
        if then is not None:
            then(nlp, args)

    return before_update
