"""Use cases: the async functions handlers and jobs call. Each file is one area."""
