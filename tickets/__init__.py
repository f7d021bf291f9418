"""Tickets: voicemail, missed calls and help-desk requests filed with their audio and transcript."""
