"""prepare_audio: recordings in the formats we meet -> 16 kHz mono PCM, and every bad input named by its error."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import pytest

from tickets.transcription.audio import BYTES_PER_SECOND, prepare_audio
from tickets.transcription.errors import (
    AudioTooLong,
    AudioUnreadable,
    ModelBroken,
    ModelMissing,
    TranscriptionError,
    WorkerCrashed,
)

MAX_S = 900
ONE_SAMPLE = 2  # bytes at 16 kHz


def _sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _telephone_wav(path: Path, seconds: float) -> Path:
    """What Asterisk records: 8 kHz, mono, signed 16-bit WAV (here a 440 Hz tone)."""
    _sox("-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", f"{seconds}", "sine", "440")
    return path


def _speech_wav(path: Path, text: str) -> Path:
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True)
    _sox(str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path))
    return path


def _samples(path: Path) -> int:
    return int(subprocess.run(["soxi", "-s", str(path)], check=True, capture_output=True, text=True).stdout)


def test_telephone_wav_becomes_16k_pcm_of_the_same_length(tmp_path: Path) -> None:
    clip = _telephone_wav(tmp_path / "tone.wav", 2.5)
    audio = prepare_audio(clip, MAX_S)
    assert len(audio.pcm) == 2.5 * BYTES_PER_SECOND
    assert audio.duration_s == pytest.approx(2.5)
    assert max(audio.pcm) > 0  # not silence


def test_espeak_speech_keeps_its_duration(tmp_path: Path) -> None:
    clip = _speech_wav(tmp_path / "speech.wav", "My printer is broken, please call me back.")
    audio = prepare_audio(clip, MAX_S)
    assert len(audio.pcm) == pytest.approx(_samples(clip) * 2 * ONE_SAMPLE, abs=4 * ONE_SAMPLE)
    assert len(audio.pcm) % 2 == 0


@pytest.mark.parametrize("codec", [("mp3", "libmp3lame"), ("ogg", "libvorbis"), ("opus", "libopus")])
def test_compressed_input_is_decoded_by_ffmpeg(tmp_path: Path, codec: tuple[str, str]) -> None:
    extension, encoder = codec
    source = _telephone_wav(tmp_path / "tone.wav", 3.0)
    clip = tmp_path / f"tone.{extension}"
    _ffmpeg("-i", str(source), "-c:a", encoder, str(clip))
    audio = prepare_audio(clip, MAX_S)
    assert audio.duration_s == pytest.approx(3.0, abs=0.1)  # codec priming/padding frames


def test_stereo_44k_is_downmixed_and_resampled(tmp_path: Path) -> None:
    clip = tmp_path / "stereo.wav"
    _sox("-n", "-r", "44100", "-c", "2", "-b", "16", str(clip), "synth", "1.5", "sine", "300")
    assert len(prepare_audio(clip, MAX_S).pcm) == 1.5 * BYTES_PER_SECOND


def test_content_decides_not_the_extension(tmp_path: Path) -> None:
    source = _telephone_wav(tmp_path / "tone.wav", 1.0)
    clip = tmp_path / "disguised.wav"  # an MP3 renamed by hand
    _ffmpeg("-i", str(source), "-c:a", "libmp3lame", "-f", "mp3", str(clip))
    assert prepare_audio(clip, MAX_S).duration_s == pytest.approx(1.0, abs=0.1)


def test_zero_byte_file_is_an_empty_message(tmp_path: Path) -> None:
    clip = tmp_path / "empty.wav"
    clip.touch()
    audio = prepare_audio(clip, MAX_S)
    assert (audio.pcm, audio.duration_s) == (b"", 0.0)


def test_wav_header_without_samples_is_an_empty_message(tmp_path: Path) -> None:
    """Asterisk leaves a bare 44-byte header when the caller hangs up at the beep."""
    clip = tmp_path / "header-only.wav"
    clip.write_bytes(_telephone_wav(tmp_path / "tone.wav", 1.0).read_bytes()[:44])
    audio = prepare_audio(clip, MAX_S)
    assert (audio.pcm, audio.duration_s) == (b"", 0.0)


def test_random_bytes_are_unreadable(tmp_path: Path) -> None:
    clip = tmp_path / "corrupt.wav"
    clip.write_bytes(os.urandom(64_000))
    with pytest.raises(AudioUnreadable, match="Invalid data") as caught:
        prepare_audio(clip, MAX_S)
    assert caught.value.code == "transcription.audio_unreadable"
    assert caught.value.path == clip


def test_text_file_is_unreadable(tmp_path: Path) -> None:
    clip = tmp_path / "notes.wav"
    clip.write_text("this is not audio\n" * 100)
    with pytest.raises(AudioUnreadable):
        prepare_audio(clip, MAX_S)


def test_image_without_audio_stream_is_unreadable(tmp_path: Path) -> None:
    clip = tmp_path / "picture.png"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1", str(clip))
    with pytest.raises(AudioUnreadable, match="matches no streams"):
        prepare_audio(clip, MAX_S)


def test_missing_file_and_directory_are_unreadable(tmp_path: Path) -> None:
    with pytest.raises(AudioUnreadable, match="not a regular file"):
        prepare_audio(tmp_path / "gone.wav", MAX_S)
    with pytest.raises(AudioUnreadable):
        prepare_audio(tmp_path, MAX_S)


def test_path_is_never_read_as_an_ffmpeg_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file called "concat:..." must be opened as that file, not make ffmpeg read other files."""
    monkeypatch.chdir(tmp_path)
    _telephone_wav(tmp_path / "a.wav", 1.0)
    tricky = Path("concat:a.wav|a.wav")
    _telephone_wav(tmp_path / tricky, 0.5)
    assert prepare_audio(tricky, MAX_S).duration_s == pytest.approx(0.5)


def test_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    clip = _telephone_wav(tmp_path / "limit.wav", 10)
    assert prepare_audio(clip, 10).duration_s == pytest.approx(10)


def test_longer_than_the_limit_is_refused(tmp_path: Path) -> None:
    clip = _telephone_wav(tmp_path / "long.wav", 10.5)
    with pytest.raises(AudioTooLong, match="longer than 10 s") as caught:
        prepare_audio(clip, 10)
    assert caught.value.code == "transcription.too_long"


def test_an_hour_of_silence_is_refused_without_decoding_it_all(tmp_path: Path) -> None:
    clip = tmp_path / "hour.wav"
    _sox("-n", "-r", "8000", "-c", "1", "-b", "16", str(clip), "trim", "0", "3600")
    with pytest.raises(AudioTooLong):
        prepare_audio(clip, MAX_S)


@pytest.mark.parametrize(
    "error",
    [
        AudioUnreadable("/media/a.wav", "Invalid data"),
        AudioTooLong("/media/a.wav", 900),
        ModelMissing("en", "/var/lib/cti/models/en"),
        ModelBroken("/var/lib/cti/models/en", "Vosk failed"),
        WorkerCrashed("worker died"),
        TranscriptionError("boom"),
    ],
)
def test_errors_survive_the_trip_back_from_a_worker(error: TranscriptionError) -> None:
    """Workers raise these; ProcessPoolExecutor pickles them back to the server."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.code == error.code
    assert copy.code.startswith("transcription.")


def test_model_missing_says_what_to_do() -> None:
    message = str(ModelMissing("fr", "/var/lib/cti/models/fr"))
    assert "'fr'" in message
    assert "/var/lib/cti/models/fr" in message
    assert "cti models install --lang fr" in message
