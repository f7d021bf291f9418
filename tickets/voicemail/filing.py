"""What a voicemail ticket says: pure functions from a recording and its transcription verdict.

The verdict is also the pipeline's checkpoint (``TranscriptionJob.result``): once a message has been
transcribed, a crash or a failed filing never makes us transcribe it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from tickets.models import Recording
from tickets.types import NewAttachment, NewTicket, Transcript, Word

State = Literal["transcribed", "empty", "not_transcribed"]
SUBJECT_WORDS = 10
SUBJECT_CHARS = 120
SUBJECT_MAX = 200  # Ticket.subject's column

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "from": "Voicemail from {who}",
        "empty_subject": "Empty voicemail from {who}",
        "unknown": "an unknown number",
        "header": "Voicemail from {who}, {seconds:.0f} s (reason: {reason}).",
        "transcript": "Transcript (unclear words are marked [word?]):",
        "empty": "No speech was recognised in this message. Listen to the attached recording.",
        "not_transcribed": "Not transcribed: {note}. Listen to the attached recording.",
    },
    "fr": {
        "from": "Message vocal de {who}",
        "empty_subject": "Message vocal vide de {who}",
        "unknown": "un numéro inconnu",
        "header": "Message vocal de {who}, {seconds:.0f} s (motif : {reason}).",
        "transcript": "Transcription (les mots incertains sont notés [mot?]) :",
        "empty": "Aucune parole reconnue dans ce message. Écoutez l'enregistrement joint.",
        "not_transcribed": "Non transcrit : {note}. Écoutez l'enregistrement joint.",
    },
}


@dataclass(frozen=True)
class Verdict:
    """How transcription ended for one recording; ``note`` says why it was not transcribed."""

    state: State
    transcript: Transcript | None = None
    note: str = ""

    def to_json(self) -> str:
        return json.dumps({"state": self.state, "note": self.note,
                           "transcript": transcript_data(self.transcript) if self.transcript else None})

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        raw = json.loads(text)
        data = raw.get("transcript")
        return cls(raw["state"], _transcript(data) if data else None, raw.get("note", ""))


def transcript_data(transcript: Transcript) -> dict[str, Any]:
    """JSON-ready transcript (the ``transcript`` ticket event's body and the job's checkpoint)."""
    words = [{"word": w.word, "confidence": w.confidence, "start": w.start, "end": w.end,
              "low_confidence": w.low_confidence} for w in transcript.words]
    return {"text": transcript.text, "language": transcript.language, "duration_s": transcript.duration_s,
            "words": words}


def _transcript(data: dict[str, Any]) -> Transcript:
    words = tuple(Word(str(w["word"]), float(w["confidence"]), float(w["start"]), float(w["end"]),
                       bool(w["low_confidence"])) for w in data.get("words", []))
    return Transcript(str(data["text"]), words, str(data["language"]), float(data["duration_s"]))


def marked_text(transcript: Transcript) -> str:
    """The transcript with low-confidence words shown as ``[word?]`` so agents know what to check."""
    if not transcript.words:
        return transcript.text.strip()
    return " ".join(f"[{w.word}?]" if w.low_confidence else w.word for w in transcript.words)


def subject(recording: Recording, verdict: Verdict) -> str:
    """The first words of what was said; "Voicemail from <number>" when nothing was."""
    texts = _texts(recording.language)
    if verdict.state == "transcribed" and verdict.transcript is not None:
        words = verdict.transcript.text.split()
        head = " ".join(words[:SUBJECT_WORDS])[:SUBJECT_CHARS]
        if head:
            return head + ("…" if len(words) > SUBJECT_WORDS or len(head) == SUBJECT_CHARS else "")
    key = "empty_subject" if verdict.state == "empty" else "from"
    return texts[key].format(who=_who(recording, texts))[:SUBJECT_MAX]


def description(recording: Recording, verdict: Verdict) -> str:
    texts = _texts(recording.language)
    header = texts["header"].format(who=_who(recording, texts), seconds=recording.duration_s,
                                    reason=recording.reason)
    if verdict.state == "transcribed" and verdict.transcript is not None:
        body = f"{texts['transcript']}\n{marked_text(verdict.transcript)}"
    elif verdict.state == "empty":
        body = texts["empty"]
    else:
        body = texts["not_transcribed"].format(note=verdict.note or "unknown error")
    return f"{header}\n\n{body}"


def new_ticket(recording: Recording, verdict: Verdict, attachment: NewAttachment | None) -> NewTicket:
    """Keyed by the recording: filing it twice (a crash, a retry) gives back the same ticket."""
    return NewTicket(
        subject=subject(recording, verdict), source="voicemail", description=description(recording, verdict),
        source_key=source_key(recording.id), caller_number=recording.caller_number,
        caller_name=recording.caller_name, language=recording.language, call_id=recording.call_id,
        attachments=(attachment,) if attachment else (),
    )


def source_key(recording_id: int) -> str:
    return f"recording:{recording_id}"


def _texts(language: str) -> dict[str, str]:
    return _TEXTS.get(language, _TEXTS["en"])


def _who(recording: Recording, texts: dict[str, str]) -> str:
    number, name = recording.caller_number, recording.caller_name
    if number and name:
        return f"{name} <{number}>"
    return number or name or texts["unknown"]
