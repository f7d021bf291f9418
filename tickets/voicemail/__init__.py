"""Voicemail: recorded through AGI, registered first, transcribed by a durable pipeline, filed as a ticket."""
