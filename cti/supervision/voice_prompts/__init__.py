"""Voice prompts on the supervision screen: every version of every prompt, activation (now, later, rollback),
uploads and text-to-speech placeholders converted to Asterisk's format, and where each prompt is used.

The file Asterisk plays stays where :class:`cti.prompts.PromptStore` says; versions live beside it under
``<prompts>/.versions/<lang>/<name>/<n>.wav`` and the active one is copied over the played file atomically.
"""
