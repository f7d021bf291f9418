"""Vosk decoding; every function here runs inside a transcription worker process (or the CLI).

A model takes seconds to load and hundreds of MB of memory, so each worker keeps the models it has
loaded in a per-process cache keyed by model directory and reuses them for every job. Results cross
back to the server as plain dicts (cheap to pickle, no Vosk objects). ``vosk`` is imported lazily so
that the server process, which imports this module only to name its functions, never loads libvosk.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tickets.transcription.audio import BYTES_PER_SECOND, SAMPLE_RATE, prepare_audio
from tickets.transcription.errors import ModelBroken

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

CHUNK_BYTES = BYTES_PER_SECOND // 4  # 0.25 s per AcceptWaveform call, as Vosk's examples do
VOSK_LOG_LEVEL = -1  # Kaldi: drop LOG lines, keep WARNING and ERROR (they name the bad model file)

_models: dict[str, Any] = {}  # model directory -> vosk.Model, for the life of this worker
_barrier: Barrier | None = None  # makes warm_up reach every worker (see ``warm``)


def _vosk() -> Any:
    import vosk

    vosk.SetLogLevel(VOSK_LOG_LEVEL)
    return vosk


def init_worker(barrier: Barrier | None = None) -> None:
    """ProcessPoolExecutor initializer: keep the pool's warm-up barrier."""
    global _barrier
    _barrier = barrier


def load_model(model_dir: str) -> Any:
    """The cached ``vosk.Model`` for ``model_dir``, loaded on first use (only ever from a path)."""
    model = _models.get(model_dir)
    if model is None:
        model = _models[model_dir] = _load(model_dir)
    return model


def _load(model_dir: str) -> Any:
    vosk = _vosk()
    try:
        return vosk.Model(model_path=model_dir)
    except Exception:  # Vosk raises a bare Exception("Failed to create a model") and logs the cause
        raise ModelBroken(model_dir, "Vosk failed to load it (its ERROR line on stderr names the cause)") from None


def transcribe_file(
    model_dir: str, path: str, language: str, low_confidence: float, max_seconds: int,
    grammar: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Decode the recording and recognise it, both here, so the server process never holds the PCM."""
    audio = prepare_audio(Path(path), max_seconds)
    return transcribe_pcm(model_dir, audio.pcm, language, low_confidence, grammar)


def transcribe_pcm(
    model_dir: str, pcm: bytes, language: str, low_confidence: float, grammar: list[str] | None = None
) -> dict[str, Any]:
    """Recognise 16 kHz mono s16le PCM; ``grammar`` limits the vocabulary to those phrases.

    Returns ``{"text", "words": [{"word", "confidence", "start", "end", "low_confidence"}], "language",
    "duration_s"}``. Empty audio gives empty text without touching the model.
    """
    duration = len(pcm) / BYTES_PER_SECOND
    if not pcm:
        return {"text": "", "words": [], "language": language, "duration_s": duration}
    segments = _recognise(_recognizer(load_model(model_dir), grammar), pcm)
    words = [_word(item, low_confidence) for segment in segments for item in segment.get("result", ())]
    text = " ".join(segment["text"] for segment in segments if segment.get("text"))
    return {"text": text, "words": words, "language": language, "duration_s": duration}


def _recognizer(model: Any, grammar: list[str] | None) -> Any:
    vosk = _vosk()
    if grammar is None:
        recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE)
    else:
        recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE, json.dumps(grammar, ensure_ascii=False))
    recognizer.SetWords(True)
    return recognizer


def _recognise(recognizer: Any, pcm: bytes) -> list[dict[str, Any]]:
    """One result per utterance Vosk's endpointing finds, then the final (possibly empty) one."""
    segments: list[dict[str, Any]] = []
    for start in range(0, len(pcm), CHUNK_BYTES):
        if recognizer.AcceptWaveform(pcm[start : start + CHUNK_BYTES]):
            segments.append(json.loads(recognizer.Result()))
    segments.append(json.loads(recognizer.FinalResult()))
    return segments


def _word(item: dict[str, Any], low_confidence: float) -> dict[str, Any]:
    confidence = min(1.0, max(0.0, float(item["conf"])))
    return {
        "word": item["word"],
        "confidence": confidence,
        "start": float(item["start"]),
        "end": float(item["end"]),
        "low_confidence": confidence < low_confidence,
    }


def warm(model_dirs: list[str], barrier_timeout: float) -> dict[str, Any]:
    """Load the models, then wait until every worker got its own warm-up task.

    ProcessPoolExecutor hands tasks to whichever worker is free, so N warm-up tasks could all run in
    one fast worker; holding each at the pool's barrier forces one task per worker.
    """
    started = time.perf_counter()
    new = [model_dir for model_dir in model_dirs if model_dir not in _models]
    for model_dir in new:
        load_model(model_dir)
    load_s = time.perf_counter() - started
    if _barrier is not None:
        _barrier.wait(barrier_timeout)
    return {"pid": os.getpid(), "load_s": load_s, "loaded": len(new)}


def check_model(model_dir: str) -> str:
    """Load ``model_dir`` (uncached) and decode one second of silence; returns the (normally empty) text."""
    segments = _recognise(_recognizer(_load(model_dir), None), bytes(BYTES_PER_SECOND))
    return " ".join(segment.get("text", "") for segment in segments).strip()
