"""Training loggers (`[training.logger]`)."""
import json
import sys
import time
from pathlib import Path
from typing import IO, Callable, Dict, Optional, Tuple, Union

from spacy.language import Language
from spacy.util import registry


@registry.loggers("spacy-posattn.JSONLLogger.v1")
def create_jsonl_logger_v1(
    path: Union[str, Path], progress_bar: Optional[str] = None
) -> Callable[[Language], Tuple[Callable[[Optional[Dict]], None], Callable[[], None]]]:
    """Print spaCy's console table and write one JSON line per evaluation with
    the wall-clock seconds since training started, for F1-against-time plots.

    Each line holds `epoch`, `step`, `seconds`, `words`, `score`, `scores`
    (dev scores, without per-type tables) and `losses` (summed since the last line).

    path (Union[str, Path]): The JSONL file; it is overwritten.
    progress_bar (Optional[str]): spaCy's progress bar: "train", "eval" or None.
    """
    console = registry.loggers.get("spacy.ConsoleLogger.v3")(progress_bar=progress_bar)

    def setup(nlp: Language, stdout: IO = sys.stdout, stderr: IO = sys.stderr):
        log_console, finalize_console = console(nlp, stdout, stderr)
        out_path = Path(path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        stream = out_path.open("w", encoding="utf8")
        start = time.perf_counter()

        def log_step(info: Optional[Dict]) -> None:
            log_console(info)
            if info is None:
                return
            scores = {k: v for k, v in (info.get("other_scores") or {}).items() if isinstance(v, (int, float))}
            line = {
                "epoch": info["epoch"],
                "step": info["step"],
                "seconds": time.perf_counter() - start,
                "words": info.get("words"),
                "score": float(info["score"]),
                "scores": scores,
                "losses": {k: float(v) for k, v in info.get("losses", {}).items()},
            }
            stream.write(json.dumps(line) + "\n")
            stream.flush()

        def finalize() -> None:
            finalize_console()
            stream.close()

        return log_step, finalize

    return setup
