"""A Django project that enqueues Resque jobs from a view; its worker runs with the same settings."""
