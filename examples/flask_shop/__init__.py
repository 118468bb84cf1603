"""A Flask app enqueueing a php-resque style job (PHP workers can run it) and reading its status."""
