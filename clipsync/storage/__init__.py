"""Where ClipSync keeps files: `keys` builds every object key.

The contract storage backends meet is `clipsync.backends.StorageBackend`.
"""
