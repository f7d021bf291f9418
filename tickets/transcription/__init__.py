"""Local speech-to-text for voicemail (Vosk in a process pool; models loaded from directories only)."""
