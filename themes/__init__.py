"""The themes shipped with ClipSync; `default` is complete, others override parts of it."""
