"""The feature-CRF mix that `posattn_ner` and `posattn_tagger` share: a
component's label probabilities averaged with its feature CRF's marginals at
prediction, `(1 - crf_weight) × network + crf_weight × CRF`, and the CRF saved
with the component (`crf.crfsuite` on disk, its feature set in `cfg`)."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy
import srsly
from spacy.tokens import Doc
from thinc.api import to_numpy

from .feature_crf import FeatureCRF, reads_pos_tags

CRF_FILE = "crf.crfsuite"


def mix_scores(scores: Sequence, marginals: Sequence[numpy.ndarray], weight: float) -> List[numpy.ndarray]:
    """RETURNS (List[numpy.ndarray]): Each doc's network `scores` averaged with its
    CRF `marginals`: `(1 - weight) × scores + weight × marginals`."""
    return [(1.0 - weight) * to_numpy(s) + weight * m for s, m in zip(scores, marginals)]


class FeatureCRFMix:
    """Mixin for a `TrainablePipe` whose `predict` gives one row of label
    probabilities per token: it adds `crf`, `crf_weight`, `mix_crf` and the
    CRF's serialization. The class sets `crf_labels` (the labels of the
    probability columns, in order); `crf_weight` is set by the constructor
    through `_init_crf_mix`."""

    crf: Optional[FeatureCRF] = None
    crf_weight: float = 0.0

    @property
    def crf_labels(self) -> Sequence[str]:
        raise NotImplementedError

    def _init_crf_mix(self, crf_weight: float) -> None:
        if not 0.0 <= crf_weight <= 1.0:
            raise ValueError(f"[{self.name}] crf_weight must be between 0 and 1, got {crf_weight!r}")
        self.crf_weight = float(crf_weight)
        self.crf = None

    def mix_crf(self, docs: List[Doc], scores: List) -> List:
        """RETURNS (List): `scores` averaged with the CRF's marginals at
        `crf_weight` (numpy arrays), or `scores` unchanged at weight 0."""
        if self.crf_weight <= 0:
            return scores
        return mix_scores(scores, self.crf_marginals(docs), self.crf_weight)

    def crf_marginals(self, docs: List[Doc]) -> List[numpy.ndarray]:
        """The feature CRF's label marginals for the docs' tokens (from their
        words, and POS tags if the CRF's feature set reads them).

        docs (List[Doc]): The docs.
        RETURNS (List[numpy.ndarray]): One (n_tokens, n_labels) array per doc.
        """
        if self.crf is None:
            raise ValueError(
                f"[{self.name}] has crf_weight = {self.crf_weight:g} but no CRF: train one "
                "with `python -m spacy_posattn train-crf`, or set crf_weight = 0."
            )
        if reads_pos_tags(self.crf.features):
            for doc in docs:
                if len(doc) and not doc.has_annotation("TAG"):
                    raise ValueError(
                        f"[{self.name}] mixes in its CRF (crf_weight = {self.crf_weight:g}), which "
                        f"reads POS tags, but the doc {doc.text[:60]!r} has none: put a `tagger` before "
                        f"'{self.name}' in the pipeline (and don't disable it), or set crf_weight = 0."
                    )
        return self.crf.docs_marginals(docs, self.crf_labels)

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        """Serialize the component, with its CRF if it has one.

        RETURNS (bytes): The serialized component.
        """
        self._note_crf_features()
        data = srsly.msgpack_loads(super().to_bytes(exclude=exclude))
        if self.crf is not None:
            data["crf"] = self.crf.model_bytes
        return srsly.msgpack_dumps(data)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()):
        """Load the component, with its CRF if the data has one.

        RETURNS: The loaded component.
        """
        data = srsly.msgpack_loads(bytes_data)
        crf = data.pop("crf", None)
        super().from_bytes(srsly.msgpack_dumps(data), exclude=exclude)
        self.crf = FeatureCRF(crf, features=self.cfg.get("crf_features", "paper")) if crf else None
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        """Save the component to a directory, its CRF as `crf.crfsuite` (and
        the CRF's feature set in `cfg`)."""
        self._note_crf_features()
        super().to_disk(path, exclude=exclude)
        if self.crf is not None:
            (Path(path) / CRF_FILE).write_bytes(self.crf.model_bytes)

    def from_disk(self, path, *, exclude=tuple()):
        """Load the component from a directory, with `crf.crfsuite` if present.

        RETURNS: The loaded component.
        """
        super().from_disk(path, exclude=exclude)
        crf_path = Path(path) / CRF_FILE
        features = self.cfg.get("crf_features", "paper")
        self.crf = FeatureCRF(crf_path.read_bytes(), features=features) if crf_path.exists() else None
        return self

    def _note_crf_features(self) -> None:
        """Record the CRF's feature set in `cfg`, which is saved with the component
        (pipelines saved before feature sets existed have none: "paper")."""
        cfg: Dict = self.cfg
        if self.crf is not None:
            cfg["crf_features"] = self.crf.features
        else:
            cfg.pop("crf_features", None)
