"""A FastAPI app using the asyncio client: async enqueue and a status endpoint."""
