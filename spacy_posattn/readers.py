"""Corpus readers (`[corpora]`)."""
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import registry
from spacy.vocab import Vocab


@registry.readers("spacy-posattn.GoldTokensCorpus.v1")
def create_gold_tokens_corpus_v1(
    path: Union[str, Path], limit: int = 0, max_length: int = 0, cache: bool = True
) -> Callable[[Language], Iterator[Example]]:
    """Read a `.spacy` file like `spacy.Corpus.v1`, but keep the gold tokenization
    (and the multi-sentence Docs) for the predicted side of each Example.

    `spacy.Corpus.v1` re-tokenizes the text with the pipeline's tokenizer, which
    splits GMB tokens such as "20-year-old" and leaves their tags without a
    one-to-one alignment; `gold_preproc = true` keeps the tokens but cuts every
    Doc into sentences, which loses the document context.

    path (Union[str, Path]): The `.spacy` file.
    limit (int): Read at most this many Docs; 0 for all.
    max_length (int): Skip Docs longer than this many tokens; 0 for no limit.
    cache (bool): Keep the gold Docs in memory after the first pass, so that later
        epochs and each component's `initialize` do not read the file again. Reading
        a DocBin costs about 1 ms per Doc that has user data (srsly looks up its
        msgpack plugins on every Doc): about 30 s per pass over GMB's single-sentence
        training Docs on 2 CPU cores, most of an epoch on a GPU. Each pass still
        gets fresh, unannotated predicted Docs. False: stream from disk each pass.
    RETURNS (Callable[[Language], Iterator[Example]]): The reader.
    """
    corpus = Corpus(path, limit=limit, max_length=max_length, gold_preproc=False)
    cached_vocab: Optional[Vocab] = None
    cached_docs: List[Doc] = []

    def read(nlp: Language) -> Iterator[Example]:
        nonlocal cached_vocab, cached_docs
        references: Iterable[Doc]
        if not cache:
            references = (eg.reference for eg in corpus(nlp))
        elif cached_vocab is nlp.vocab:
            references = cached_docs
        else:
            cached_docs = [eg.reference for eg in corpus(nlp)]
            cached_vocab = nlp.vocab
            references = cached_docs
        for reference in references:
            yield Example(unannotated_copy(reference), reference)

    return read


def unannotated_copy(doc: Doc) -> Doc:
    """RETURNS (Doc): A Doc with the same tokens and spaces, and no annotation."""
    return Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
