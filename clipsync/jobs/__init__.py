"""Background jobs: the Huey queue, its consumer, and the tasks it runs."""
