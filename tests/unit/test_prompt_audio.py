"""Converting uploads and texts to Asterisk's prompt format (WAV 8 kHz mono 16-bit) with the real ffprobe,
ffmpeg and espeak-ng, on real WAV, MP3 and OGG files made by sox and ffmpeg; and what is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cti.supervision.voice_prompts.audio import Limits, convert, probe_format, speak
from cti.supervision.voice_prompts.errors import TextRefused, ToolMissing, TooLong, TooShort, UnsupportedAudio
from tests.support.prompt_audio import encode, frames, tone, wav_format


@pytest.mark.parametrize(("suffix", "codec", "container"), [
    (".wav", (), "wav"),
    (".mp3", ("-c:a", "libmp3lame"), "mp3"),
    (".ogg", ("-c:a", "libvorbis"), "ogg"),
    (".opus.ogg", ("-c:a", "libopus"), "ogg"),
], ids=["wav", "mp3", "ogg-vorbis", "ogg-opus"])
def test_wav_mp3_and_ogg_become_8khz_mono_16bit(tmp_path: Path, suffix: str, codec: tuple[str, ...],
                                                container: str) -> None:
    source = tone(tmp_path / "source.wav", 1.5)
    upload = source if suffix == ".wav" else encode(source, tmp_path / f"upload{suffix}", *codec)
    assert probe_format(upload) == container
    seconds = convert(upload, container, tmp_path / "out.wav", Limits())
    rate, channels, width, measured = wav_format(tmp_path / "out.wav")
    assert (rate, channels, width) == (8000, 1, 2)
    assert measured == seconds
    assert 1.4 < seconds < 1.6  # encoders pad a little; the length is the tone's
    assert (tmp_path / "out.wav").read_bytes()[36:40] == b"data"  # a bare 44-byte header: no metadata chunk


def test_a_file_already_in_the_telephone_format_keeps_its_samples(tmp_path: Path) -> None:
    source = tone(tmp_path / "tel.wav", 1.0, rate=8000, channels=1)
    convert(source, "wav", tmp_path / "out.wav", Limits())
    assert frames(tmp_path / "out.wav") == frames(source)


def test_a_mislabelled_mp3_is_judged_by_its_content(tmp_path: Path) -> None:
    mp3 = encode(tone(tmp_path / "source.wav"), tmp_path / "real.mp3")
    renamed = tmp_path / "looks-like.wav"
    renamed.write_bytes(mp3.read_bytes())
    assert probe_format(renamed) == "mp3"


def test_text_renamed_wav_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "welcome.wav"
    fake.write_text("RIFF? no, just text pretending to be a prompt\n" * 20)
    with pytest.raises(UnsupportedAudio, match="not audio"):
        probe_format(fake)


def test_an_image_renamed_wav_is_refused_naming_what_it_is(tmp_path: Path) -> None:
    image = tmp_path / "picture.png"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=red:s=16x16",
                    "-frames:v", "1", str(image)], check=True)
    renamed = tmp_path / "welcome.wav"
    renamed.write_bytes(image.read_bytes())
    with pytest.raises(UnsupportedAudio, match="png"):
        probe_format(renamed)


def test_a_video_with_sound_is_refused(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=d=1:s=32x32",
                    "-f", "lavfi", "-i", "sine=d=1", "-shortest", str(video)], check=True)
    with pytest.raises(UnsupportedAudio, match="not WAV, MP3 or OGG"):
        probe_format(video)


def test_an_ogg_holding_video_is_refused(tmp_path: Path) -> None:
    video = tmp_path / "clip.ogg"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=d=1:s=32x32",
                    "-f", "lavfi", "-i", "sine=d=1", "-shortest", "-c:v", "libtheora", "-c:a", "libvorbis",
                    str(video)], check=True)
    with pytest.raises(UnsupportedAudio, match="audio only"):
        probe_format(video)


def test_longer_than_five_minutes_is_refused(tmp_path: Path) -> None:
    long = tone(tmp_path / "long.wav", 301, rate=8000, channels=1)
    with pytest.raises(TooLong, match="more than 300 s"):
        convert(long, "wav", tmp_path / "out.wav", Limits())


def test_exactly_at_the_limit_is_accepted(tmp_path: Path) -> None:
    source = tone(tmp_path / "three.wav", 3, rate=8000, channels=1)
    assert convert(source, "wav", tmp_path / "out.wav", Limits(max_seconds=3)) == 3.0


def test_shorter_than_a_fifth_of_a_second_is_refused(tmp_path: Path) -> None:
    blip = tone(tmp_path / "blip.wav", 0.1)
    with pytest.raises(TooShort, match=r"0\.10 s, less than 0\.2 s"):
        convert(blip, "wav", tmp_path / "out.wav", Limits())


@pytest.mark.parametrize("language", ["en", "fr"])
def test_speech_in_each_language_is_in_the_telephone_format(tmp_path: Path, language: str) -> None:
    seconds = speak("Bonjour et bienvenue", language, tmp_path, tmp_path / "out.wav", Limits())
    assert wav_format(tmp_path / "out.wav")[:3] == (8000, 1, 2)
    assert seconds > 0.5


def test_speech_text_is_never_taken_as_an_option(tmp_path: Path) -> None:
    """The text goes on stdin: ``--help`` is spoken, not obeyed (espeak-ng would print its usage instead)."""
    assert speak("--help", "en", tmp_path, tmp_path / "out.wav", Limits()) > 0.2


@pytest.mark.parametrize(("text", "reason"), [("   ", "empty"), ("x" * 1001, "longer than 1000")])
def test_speech_refuses_empty_or_too_long_texts(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(TextRefused, match=reason):
        speak(text, "en", tmp_path, tmp_path / "out.wav", Limits())


def test_a_missing_tool_is_reported_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tone(tmp_path / "source.wav")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    with pytest.raises(ToolMissing, match="ffprobe is not installed"):
        probe_format(source)
