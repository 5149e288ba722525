"""The OpenAPI documents for ChatGPT, the docs pages and the Connect page."""
