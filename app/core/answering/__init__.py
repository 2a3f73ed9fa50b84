"""Answering: search, prompts with numbered sources, guarded generation, citations."""
