"""One torch thread in forked worker processes.

`nlp.pipe(texts, n_process=2)` and `spacy apply --n-process 2` fork workers.
A child forked after torch's OpenMP thread pool has run hangs at its first
parallel region. Each worker is meant to use one core anyway, so after a fork
the child sets torch to one thread, which runs torch's loops inline; the parent
keeps its threads.
"""
import os

_registered = False


def one_torch_thread_after_fork() -> None:
    """Register (once per process) a fork handler that gives the child one torch thread."""
    global _registered
    if _registered or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(after_in_child=_set_one_thread)
    _registered = True


def _set_one_thread() -> None:
    import torch

    torch.set_num_threads(1)
