"""Where ClipSync keeps files: object keys, and the contract storage backends meet."""
