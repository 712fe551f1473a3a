"""ClipSync's database migrations (aerich), one file per step in `models/`.

Write a new one with `python scripts/makemigration.py NAME --postgres URL`.
"""
