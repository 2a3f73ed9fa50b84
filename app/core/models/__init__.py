"""The local models: embeddings, the chat model, and finding model files."""
