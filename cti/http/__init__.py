"""HTTP and websocket front: aiohttp application, authentication, core routes."""
